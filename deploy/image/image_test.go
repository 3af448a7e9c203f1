package image

import (
	"archive/tar"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// TestDockerfileImage builds the binary as the Dockerfile's build stage
// does (CGO_ENABLED=0, -trimpath, version, commit and date stamped with
// -ldflags), builds the final stage into an OCI layout, reads it back and
// checks its config and files, and runs the binary taken out of the layer.
func TestDockerfileImage(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "mdp")
	const (
		version = "v9.8.7-test"
		commit  = "0123456789abcdef0123456789abcdef01234567"
		date    = "2026-01-02T03:04:05Z"
	)
	ldflags := "-s -w -X github.com/mdpio/mdp/cli.version=" + version + " -X github.com/mdpio/mdp/cli.commit=" + commit + " -X github.com/mdpio/mdp/cli.date=" + date
	build := exec.Command("go", "build", "-trimpath", "-tags", "timetzdata", "-ldflags", ldflags, "-o", bin, "./cmd/mdp")
	build.Dir = "../.."
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// The Dockerfile's build stage uses the same flags as above.
	for _, want := range []string{"CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -tags timetzdata", `-ldflags "-s -w -X github.com/mdpio/mdp/cli.version=${VERSION} -X github.com/mdpio/mdp/cli.commit=${COMMIT} -X github.com/mdpio/mdp/cli.date=${DATE}"`} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	stage, err := ParseDockerfile(strings.NewReader(string(df)), map[string]string{"VERSION": version, "COMMIT": commit})
	if err != nil {
		t.Fatal(err)
	}
	binData, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	ca := []byte("-----BEGIN CERTIFICATE-----\ntest bundle\n-----END CERTIFICATE-----\n")
	if b, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		ca = b
	}
	img, err := Build(stage, binData, ca, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	oci := filepath.Join(dir, "oci")
	p, err := layout.Write(oci, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}

	// Read the image back from the layout, as a registry push would.
	idx, err := layout.ImageIndexFromPath(oci)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("index %v %v", m, err)
	}
	got, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || c.WorkingDir != "/data" || cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("user %q workdir %q platform %s/%s", c.User, c.WorkingDir, cf.OS, cf.Architecture)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/mdp"}) {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	if !slices.Equal(c.Cmd, []string{"serve", "--listen", "0.0.0.0:8080", "--state", "/data/mdp-state.db"}) {
		t.Errorf("cmd %q", c.Cmd)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("exposed %v", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/data"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("volumes %v", c.Volumes)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.title":    "mdp",
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": commit,
		"org.opencontainers.image.source":   "https://github.com/mdpio/mdp",
	} {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}

	// The one layer: its files, modes and owners.
	layers, err := got.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	var fromLayer []byte
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
		if h.Name == "usr/local/bin/mdp" {
			if fromLayer, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range map[string]struct {
		mode     int64
		uid, gid int
	}{
		"usr/local/bin/mdp":                 {0o755, 0, 0},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0},
		"etc/passwd":                        {0o644, 0, 0},
		"data/":                             {0o755, UID, GID},
		"tmp/":                              {0o1777, 0, 0},
	} {
		h := files[name]
		if h == nil {
			t.Errorf("layer lacks %s", name)
			continue
		}
		if h.Mode != want.mode || h.Uid != want.uid || h.Gid != want.gid {
			t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", name, h.Mode, h.Uid, h.Gid, want.mode, want.uid, want.gid)
		}
	}

	// The binary in the layer is static and prints the stamped version.
	exe := filepath.Join(dir, "from-layer")
	if err := os.WriteFile(exe, fromLayer, 0o755); err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary is dynamically linked (%v)", p.Type)
		}
	}
	ef.Close()
	out, err := exec.Command(exe, "version", "--json").Output()
	if err != nil {
		t.Fatalf("mdp version: %v", err)
	}
	var v struct {
		Version, Commit, BuildDate string
	}
	var raw map[string]any
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	v.Version, _ = raw["version"].(string)
	v.Commit, _ = raw["commit"].(string)
	v.BuildDate, _ = raw["build_date"].(string)
	if v.Version != version || v.Commit != commit || v.BuildDate != date {
		t.Errorf("mdp version --json: %s", out)
	}
	text, err := exec.Command(exe, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mdp " + version + "\n", "commit: " + commit + "\n", "built: " + date + "\n"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("mdp version lacks %q:\n%s", want, text)
		}
	}
}

func TestParseDockerfileRejects(t *testing.T) {
	if _, err := ParseDockerfile(strings.NewReader("FROM scratch\nENTRYPOINT /usr/local/bin/mdp\n"), nil); err == nil || !strings.Contains(err.Error(), "want the JSON array form") {
		t.Errorf("shell-form ENTRYPOINT: %v", err)
	}
	st, err := ParseDockerfile(strings.NewReader("FROM debian\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Build(st, nil, nil, time.Now()); err == nil || !strings.Contains(err.Error(), "FROM scratch images only") {
		t.Errorf("Build FROM debian: %v", err)
	}
}
