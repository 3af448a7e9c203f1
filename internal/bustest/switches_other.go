//go:build !unix

package bustest

// voluntarySwitches is not measured here.
func voluntarySwitches() int64 { return 0 }
