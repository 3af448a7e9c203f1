// Command mdp-image builds mdp's container image from the repository's
// Dockerfile without a container engine (see package image) and writes it
// as an OCI image layout directory and/or a tarball `docker load` and
// `podman load` read:
//
//	CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/mdpio/mdp/cli.version=v0.1.0 ..." -o /tmp/mdp ./cmd/mdp
//	cd deploy && go run ./cmd/mdp-image -binary /tmp/mdp -dockerfile ../Dockerfile \
//	  -build-arg VERSION=v0.1.0 -build-arg COMMIT=$(git rev-parse HEAD) -tar /tmp/mdp.tar -tag mdp:v0.1.0
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/mdpio/mdp/deploy/image"
)

type argList map[string]string

func (a argList) String() string { return fmt.Sprint(map[string]string(a)) }
func (a argList) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	a[k] = v
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mdp-image:", err)
		os.Exit(1)
	}
}

func run() error {
	args := argList{}
	binary := flag.String("binary", "", "the static linux/amd64 mdp binary (CGO_ENABLED=0)")
	dockerfile := flag.String("dockerfile", "../Dockerfile", "the Dockerfile whose final stage to build")
	ca := flag.String("ca", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle to install")
	ociDir := flag.String("oci", "", "write an OCI image layout to this directory")
	tarPath := flag.String("tar", "", "write a docker-load tarball to this file")
	tag := flag.String("tag", "mdp:dev", "the image reference in the tarball")
	flag.Var(args, "build-arg", "NAME=VALUE for the Dockerfile's ARGs (repeatable)")
	flag.Parse()
	if *binary == "" || (*ociDir == "" && *tarPath == "") {
		return fmt.Errorf("want -binary and at least one of -oci, -tar")
	}
	f, err := os.Open(*dockerfile)
	if err != nil {
		return fmt.Errorf("-dockerfile: %w", err)
	}
	defer f.Close()
	stage, err := image.ParseDockerfile(f, args)
	if err != nil {
		return err
	}
	bin, err := image.ReadFileArg("binary", *binary)
	if err != nil {
		return err
	}
	caData, err := image.ReadFileArg("ca", *ca)
	if err != nil {
		return err
	}
	img, err := image.Build(stage, bin, caData, time.Now().UTC().Truncate(time.Second))
	if err != nil {
		return err
	}
	if *ociDir != "" {
		p, err := layout.Write(*ociDir, empty.Index)
		if err != nil {
			return fmt.Errorf("oci layout: %w", err)
		}
		if err := p.AppendImage(img); err != nil {
			return fmt.Errorf("oci layout: %w", err)
		}
	}
	if *tarPath != "" {
		ref, err := name.NewTag(*tag)
		if err != nil {
			return fmt.Errorf("-tag: %w", err)
		}
		if err := tarball.WriteToFile(*tarPath, ref, img); err != nil {
			return fmt.Errorf("tarball: %w", err)
		}
	}
	d, _ := img.Digest()
	fmt.Println(d)
	return nil
}
