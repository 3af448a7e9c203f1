// Command custom_operator is mdp plus one operator of its own,
// operator.price_scale, registered the way every built-in component is.
// It runs the standard command line, so every mdp command works and the
// new type can be used from YAML:
//
//	go run ./examples/custom_operator run --config examples/custom_operator/job.yaml
//	go run ./examples/custom_operator components operator.price_scale
//
// Outside the mdp module, a program like this one depends on mdp through a
// clone until the module is served by a proxy: a replace directive in its
// go.mod (replace github.com/mdpio/mdp => ../mdp) or a workspace
// (go work init ./myprogram ../mdp).
package main

import (
	"os"

	"github.com/mdpio/mdp/cli"
	_ "github.com/mdpio/mdp/components" // the built-in components
)

func main() { os.Exit(cli.Execute()) }
