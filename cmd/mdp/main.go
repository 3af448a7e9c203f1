// Command mdp is the market-data streaming engine's command line: it runs,
// validates and describes job files. See package cli for the commands.
package main

import (
	"os"

	"github.com/mdpio/mdp/cli"
	_ "github.com/mdpio/mdp/components"
)

func main() { os.Exit(cli.Execute()) }
