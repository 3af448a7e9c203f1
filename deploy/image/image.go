// Package image builds mdp's container image without a container engine:
// the final stage of the repository's Dockerfile (FROM scratch, the CA
// bundle, a non-root user, the /data volume, the static mdp binary) as one
// layer with go-containerregistry, its config taken from the Dockerfile's
// own USER, WORKDIR, VOLUME, EXPOSE, ENTRYPOINT, CMD and LABEL lines, so the
// image the test checks is the one `docker build` makes.
package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// UID and GID are the non-root user the image runs as (distroless's
// nonroot: 65532).
const (
	UID = 65532
	GID = 65532
	// BinaryPath is where the image holds mdp.
	BinaryPath = "/usr/local/bin/mdp"
)

// Stage is the config of the Dockerfile's final stage.
type Stage struct {
	From       string
	User       string
	WorkingDir string
	Volumes    []string
	Exposed    []string // e.g. 8080/tcp
	Entrypoint []string
	Cmd        []string
	Labels     map[string]string
}

var reArg = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// ParseDockerfile reads the final stage of a Dockerfile, substituting
// build args (args over the ARG defaults of that stage).
func ParseDockerfile(r io.Reader, args map[string]string) (Stage, error) {
	var lines []string
	sc := bufio.NewScanner(r)
	var cur strings.Builder
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return Stage{}, fmt.Errorf("read Dockerfile: %w", err)
	}
	var st Stage
	vars := map[string]string{}
	expand := func(s string) string {
		return reArg.ReplaceAllStringFunc(s, func(m string) string {
			name := strings.Trim(m, "${}")
			return vars[name]
		})
	}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			from := ""
			for _, f := range strings.Fields(rest) {
				if !strings.HasPrefix(f, "--") { // --platform=...
					from = f
					break
				}
			}
			st = Stage{From: from, Labels: map[string]string{}}
			vars = map[string]string{}
		case "ARG":
			name, def, _ := strings.Cut(rest, "=")
			if v, ok := args[name]; ok {
				def = v
			}
			vars[name] = def
		case "USER":
			st.User = expand(rest)
		case "WORKDIR":
			st.WorkingDir = expand(rest)
		case "VOLUME":
			vs, err := list(rest)
			if err != nil {
				return Stage{}, err
			}
			st.Volumes = append(st.Volumes, vs...)
		case "EXPOSE":
			for _, p := range strings.Fields(expand(rest)) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				st.Exposed = append(st.Exposed, p)
			}
		case "ENTRYPOINT":
			vs, err := list(rest)
			if err != nil {
				return Stage{}, err
			}
			st.Entrypoint = vs
		case "CMD":
			vs, err := list(rest)
			if err != nil {
				return Stage{}, err
			}
			st.Cmd = vs
		case "LABEL":
			kvs, err := labels(expand(rest))
			if err != nil {
				return Stage{}, err
			}
			for k, v := range kvs {
				st.Labels[k] = v
			}
		}
	}
	if st.From == "" {
		return Stage{}, fmt.Errorf("dockerfile has no FROM")
	}
	return st, nil
}

// list reads a JSON-array (exec form) instruction argument.
func list(s string) ([]string, error) {
	var vs []string
	if err := json.Unmarshal([]byte(s), &vs); err != nil {
		return nil, fmt.Errorf("want the JSON array form in %q: %w", s, err)
	}
	return vs, nil
}

var reLabel = regexp.MustCompile(`([A-Za-z0-9._-]+)="((?:[^"\\]|\\.)*)"`)

func labels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, m := range reLabel.FindAllStringSubmatch(s, -1) {
		out[m[1]] = m[2]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("LABEL %q: want key=\"value\" pairs", s)
	}
	return out, nil
}

// Build makes the image of stage (which must be FROM scratch) around the
// static binary, with the CA bundle at /etc/ssl/certs/ca-certificates.crt.
func Build(stage Stage, binary, caBundle []byte, created time.Time) (v1.Image, error) {
	if stage.From != "scratch" {
		return nil, fmt.Errorf("final stage is FROM %s: this builder makes FROM scratch images only", stage.From)
	}
	layer, err := rootfs(binary, caBundle, created)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: created}
	cf.Config.User = stage.User
	cf.Config.WorkingDir = stage.WorkingDir
	cf.Config.Entrypoint = stage.Entrypoint
	cf.Config.Cmd = stage.Cmd
	cf.Config.Labels = stage.Labels
	cf.Config.Env = []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cf.Config.Volumes = map[string]struct{}{}
	for _, v := range stage.Volumes {
		cf.Config.Volumes[v] = struct{}{}
	}
	cf.Config.ExposedPorts = map[string]struct{}{}
	for _, p := range stage.Exposed {
		cf.Config.ExposedPorts[p] = struct{}{}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

// rootfs is the image's one layer: what the Dockerfile's build stage puts
// in /out/rootfs plus the binary.
func rootfs(binary, caBundle []byte, mod time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64, uid, gid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: gid, ModTime: mod})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mod}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc/", 0o755, 0, 0) },
		func() error { return dir("etc/ssl/", 0o755, 0, 0) },
		func() error { return dir("etc/ssl/certs/", 0o755, 0, 0) },
		func() error { return file("etc/ssl/certs/ca-certificates.crt", 0o644, caBundle) },
		func() error {
			return file("etc/passwd", 0o644, fmt.Appendf(nil, "nonroot:x:%d:%d:nonroot:/data:/sbin/nologin\n", UID, GID))
		},
		func() error { return file("etc/group", 0o644, fmt.Appendf(nil, "nonroot:x:%d:\n", GID)) },
		func() error { return dir("data/", 0o755, UID, GID) },
		func() error { return dir("tmp/", 0o1777, 0, 0) },
		func() error { return dir("usr/", 0o755, 0, 0) },
		func() error { return dir("usr/local/", 0o755, 0, 0) },
		func() error { return dir("usr/local/bin/", 0o755, 0, 0) },
		func() error { return file(strings.TrimPrefix(BinaryPath, "/"), 0o755, binary) },
		tw.Close,
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, fmt.Errorf("layer: %w", err)
		}
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return l, nil
}

// ReadFileArg reads a file named by a flag, with the flag in the error.
func ReadFileArg(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-%s: %w", flag, err)
	}
	return b, nil
}
