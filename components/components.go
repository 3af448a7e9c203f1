// Package components registers every built-in component. Import it for its
// side effects, as database/sql drivers are imported:
//
//	import _ "github.com/mdpio/mdp/components"
package components

import ()
