// Command gendocs writes the generated reference pages (package
// internal/docgen) into a directory, docs/reference by default:
//
//	go generate ./internal/docgen
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mdpio/mdp/internal/docgen"
)

func main() {
	dir := flag.String("dir", "docs/reference", "directory to write the pages into")
	flag.Parse()
	pages, err := docgen.Generate(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
	for name, b := range pages {
		if err := os.WriteFile(filepath.Join(*dir, name), b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gendocs:", err)
			os.Exit(1)
		}
	}
}
