// Command custom_operator is mdp plus one operator of its own,
// operator.price_scale, registered the way every built-in component is.
// It runs the standard command line, so every mdp command works and the
// new type can be used from YAML:
//
//	go run ./examples/custom_operator run --config examples/custom_operator/job.yaml
//	go run ./examples/custom_operator components operator.price_scale
package main

import (
	"os"

	"github.com/mdpio/mdp/cli"
	_ "github.com/mdpio/mdp/components" // the built-in components
)

func main() { os.Exit(cli.Execute()) }
