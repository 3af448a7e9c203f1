package scaleout

import "github.com/mdpio/mdp/config"

// rereadable reports why the job's source cannot be read again to the same
// records, or nil when it can (config.Document.ScaleoutRereadable).
func rereadable(doc *config.Document) error { return doc.ScaleoutRereadable() }
