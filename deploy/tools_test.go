package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/mdpio/mdp/deploy/kubeschema"
	"github.com/mdpio/mdp/internal/testenv"
)

// The tools the checks run, pinned; .ci/run installs these versions.
var tools = map[string]string{
	"helm":        "helm.sh/helm/v3/cmd/helm@v3.22.0",
	"kubeconform": "github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0",
	"promtool":    "github.com/prometheus/prometheus/cmd/promtool@v0.316.0",
	"actionlint":  "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12",
	// goreleaser v2.18 needs Go 1.27; v2.17.0 builds with this machine's Go.
	"goreleaser":      "github.com/goreleaser/goreleaser/v2@v2.17.0",
	"cyclonedx-gomod": "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0",
}

// tool finds a pinned tool on PATH or in $HOME/go/bin; missing, the test
// skips (fails under CI) with the command that installs it.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, "go", "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testenv.Missing(t, name, "not on PATH nor in $HOME/go/bin", "go install "+tools[name]+" (.ci/run does)")
	return ""
}

// run runs a tool and returns its combined output; a failure ends the test
// with the output.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(dir string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

const chart = "helm/mdp"

// kinds are the kinds the chart renders, with their Go API types.
var kinds = []kubeschema.Kind{
	{APIVersion: "apps/v1", Kind: "StatefulSet", Type: reflect.TypeFor[appsv1.StatefulSet]()},
	{APIVersion: "apps/v1", Kind: "Deployment", Type: reflect.TypeFor[appsv1.Deployment]()},
	{APIVersion: "v1", Kind: "Service", Type: reflect.TypeFor[corev1.Service]()},
	{APIVersion: "v1", Kind: "Secret", Type: reflect.TypeFor[corev1.Secret]()},
	{APIVersion: "v1", Kind: "ConfigMap", Type: reflect.TypeFor[corev1.ConfigMap]()},
	{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Type: reflect.TypeFor[networkingv1.Ingress]()},
	{APIVersion: "monitoring.coreos.com/v1", Kind: "ServiceMonitor", Type: reflect.TypeFor[monitoringv1.ServiceMonitor]()},
	{APIVersion: "monitoring.coreos.com/v1", Kind: "PodMonitor", Type: reflect.TypeFor[monitoringv1.PodMonitor]()},
}

// kedaSchema is KEDA's ScaledObject schema, written from KEDA's CRD (see
// kubeschema/keda/README.md), named as kubeschema.Location expects.
const kedaSchema = "kubeschema/keda/scaledobject-keda.sh-v1alpha1.json"

// writeSchemas writes the generated schemas and KEDA's into a new
// directory for kubeconform -schema-location.
func writeSchemas(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := kubeschema.Write(dir, kinds...); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(kedaSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(kedaSchema)), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// docs splits rendered manifests into objects.
func docs(t *testing.T, manifests string) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := yaml.NewDecoder(strings.NewReader(manifests))
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatalf("rendered YAML: %v", err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

func get(m any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			mm, _ := m.(map[string]any)
			m = mm[k]
		case int:
			l, _ := m.([]any)
			if k >= len(l) {
				return nil
			}
			m = l[k]
		}
	}
	return m
}

// TestHelmChart lints the chart, renders it with the default values and
// with testdata/full-values.yaml, validates every object with kubeconform
// -strict against schemas generated from the Kubernetes and Prometheus
// Operator Go types, and checks what the chart promises.
func TestHelmChart(t *testing.T) {
	helm, kc := tool(t, "helm"), tool(t, "kubeconform")
	schemas := writeSchemas(t)
	home := t.TempDir() // helm's config and cache stay out of $HOME
	t.Setenv("HELM_CONFIG_HOME", home)
	t.Setenv("HELM_CACHE_HOME", home)
	t.Setenv("HELM_DATA_HOME", home)
	run(t, ".", helm, "lint", "--strict", chart)
	run(t, ".", helm, "lint", "--strict", chart, "-f", "helm/testdata/full-values.yaml")

	validate := func(name, manifests string) {
		t.Helper()
		f := filepath.Join(t.TempDir(), name+".yaml")
		if err := os.WriteFile(f, []byte(manifests), 0o644); err != nil {
			t.Fatal(err)
		}
		out := run(t, ".", kc, "-strict", "-summary", "-schema-location", kubeschema.Location(schemas), f)
		t.Logf("kubeconform %s: %s", name, strings.TrimSpace(out))
	}

	def := run(t, ".", helm, "template", "mdp", chart, "--namespace", "md")
	validate("default", def)
	objs := docs(t, def)
	var kindsGot []string
	for _, o := range objs {
		kindsGot = append(kindsGot, o["kind"].(string))
	}
	if strings.Join(kindsGot, ",") != "Secret,Service,StatefulSet" {
		t.Errorf("default renders %v, want Secret, Service, StatefulSet", kindsGot)
	}
	sts := objs[2]
	c := get(sts, "spec", "template", "spec", "containers", 0)
	args := get(c, "args").([]any)
	for _, want := range []string{"serve", "--listen=0.0.0.0:8080", "--state=/data/mdp-state.db", "--drain-timeout=50s"} {
		found := false
		for _, a := range args {
			found = found || a == want
		}
		if !found {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	for path, want := range map[string]any{
		"livenessProbe.httpGet.path":               "/healthz",
		"readinessProbe.httpGet.path":              "/readyz",
		"securityContext.readOnlyRootFilesystem":   true,
		"securityContext.allowPrivilegeEscalation": false,
		"securityContext.privileged":               false,
		"env.0.name":                               "MDP_API_TOKEN",
		"env.0.valueFrom.secretKeyRef.name":        "mdp-token",
		"resources.requests.memory":                "256Mi",
		"volumeMounts.0.mountPath":                 "/data",
	} {
		if got := get(c, dotted(path)...); got != want {
			t.Errorf("container %s = %v, want %v", path, got, want)
		}
	}
	if get(sts, "spec", "template", "spec", "securityContext", "runAsNonRoot") != true || get(sts, "spec", "template", "spec", "securityContext", "runAsUser") != 65532 {
		t.Errorf("pod securityContext %v", get(sts, "spec", "template", "spec", "securityContext"))
	}
	if get(sts, "spec", "volumeClaimTemplates", 0, "spec", "resources", "requests", "storage") != "10Gi" {
		t.Errorf("volumeClaimTemplates %v", get(sts, "spec", "volumeClaimTemplates"))
	}

	full := run(t, ".", helm, "template", "mdp", chart, "--namespace", "md", "-f", "helm/testdata/full-values.yaml")
	validate("full", full)
	kindsGot = nil
	byKind := map[string]map[string]any{}
	for _, o := range docs(t, full) {
		kindsGot = append(kindsGot, o["kind"].(string))
		byKind[o["kind"].(string)] = o
	}
	if strings.Join(kindsGot, ",") != "ConfigMap,Service,Deployment,StatefulSet,Ingress,PodMonitor,ScaledObject,ServiceMonitor" {
		t.Errorf("full values render %v", kindsGot)
	}
	if !strings.Contains(get(byKind["ConfigMap"], "data", "bars.yaml").(string), "type: sink.sqlite") {
		t.Errorf("jobs ConfigMap %v", byKind["ConfigMap"]["data"])
	}
	fc := get(byKind["StatefulSet"], "spec", "template", "spec", "containers", 0)
	if !strings.Contains(strings.Join(strs(get(fc, "args")), " "), "--jobs=/etc/mdp/jobs") || get(fc, "env", 0, "valueFrom", "secretKeyRef", "name") != "mdp-api" {
		t.Errorf("full container args %v env %v", get(fc, "args"), get(fc, "env"))
	}
	if get(byKind["ServiceMonitor"], "spec", "endpoints", 0, "authorization", "credentials", "name") != "mdp-api" ||
		get(byKind["ServiceMonitor"], "spec", "endpoints", 0, "honorLabels") != true {
		t.Errorf("ServiceMonitor %v", byKind["ServiceMonitor"]["spec"])
	}

	// The scale-out workers, their PodMonitor and the KEDA ScaledObject.
	wc := get(byKind["Deployment"], "spec", "template", "spec", "containers", 0)
	if got := strings.Join(strs(get(wc, "args")), " "); got != "--log-level=debug worker --config=/etc/mdp/jobs/bars-scaleout.yaml --workers=3 --id=$(POD_NAME) --set=metrics.enable=true --set=metrics.listen=0.0.0.0:9108 --set=shutdown_timeout=20s" {
		t.Errorf("worker args %s", got)
	}
	if get(byKind["Deployment"], "spec", "replicas") != 3 || get(byKind["Deployment"], "spec", "strategy", "type") != "Recreate" || get(wc, "env", 0, "valueFrom", "fieldRef", "fieldPath") != "metadata.name" {
		t.Errorf("worker Deployment %v", byKind["Deployment"]["spec"])
	}
	wsel, ssel := get(byKind["Deployment"], "spec", "selector", "matchLabels"), get(byKind["StatefulSet"], "spec", "selector", "matchLabels")
	if get(wsel, "app.kubernetes.io/name") != "mdp-worker" || get(ssel, "app.kubernetes.io/name") != "mdp" {
		t.Errorf("the worker and server selectors overlap: %v, %v", wsel, ssel)
	}
	if get(byKind["PodMonitor"], "spec", "podMetricsEndpoints", 0, "honorLabels") != true || get(byKind["PodMonitor"], "spec", "selector", "matchLabels", "app.kubernetes.io/name") != "mdp-worker" {
		t.Errorf("PodMonitor %v", byKind["PodMonitor"]["spec"])
	}
	so := byKind["ScaledObject"]
	for path, want := range map[string]any{
		"scaleTargetRef.name": "mdp-worker", "scaleTargetRef.kind": "Deployment", "minReplicaCount": 3, "maxReplicaCount": 6,
		"advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds": 300,
		"advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies.0.type":            "Pods",
		"advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies.0.value":           1,
		"advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies.0.periodSeconds":   60,
		"triggers.0.type": "prometheus", "triggers.0.metadata.serverAddress": "http://prometheus.monitoring.svc:9090",
		"triggers.0.metadata.query":     `sum(mdp_scaleout_job_lag_messages{job="bars-scaleout"})`,
		"triggers.0.metadata.threshold": "50000", "triggers.0.metadata.activationThreshold": "1000",
	} {
		if got := get(so, dotted("spec."+path)...); got != want {
			t.Errorf("ScaledObject %s = %#v, want %#v", path, got, want)
		}
	}

	// The schemas are strict: a misplaced field fails.
	bad := strings.Replace(def, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: true\n            readOnlyRootFS: true", 1)
	f := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(f, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runErr(".", kc, "-strict", "-schema-location", kubeschema.Location(schemas), f); err == nil || !strings.Contains(out, "readOnlyRootFS") {
		t.Errorf("kubeconform accepted an unknown field: %v\n%s", err, out)
	}
}

// TestScaledObjectSchema: kubeconform checks a ScaledObject against KEDA's
// schema (kubeschema/keda) and rejects an unknown field, a trigger without
// metadata and a maximum of 0 replicas.
func TestScaledObjectSchema(t *testing.T) {
	kc := tool(t, "kubeconform")
	schemas := writeSchemas(t)
	good := `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: mdp-worker}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: mdp-worker}
  minReplicaCount: 2
  maxReplicaCount: 8
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown: {selectPolicy: Disabled}
        scaleUp:
          policies: [{type: Pods, value: 2, periodSeconds: 60}]
  triggers:
    - type: prometheus
      metadata: {serverAddress: "http://prometheus:9090", query: "sum(mdp_scaleout_job_lag_messages{job=\"bars\"})", threshold: "1000"}
`
	check := func(name, manifest string) (string, error) {
		f := filepath.Join(t.TempDir(), name+".yaml")
		if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		return runErr(".", kc, "-strict", "-summary", "-schema-location", kubeschema.Location(schemas), f)
	}
	if out, err := check("good", good); err != nil || !strings.Contains(out, "Valid: 1") {
		t.Fatalf("a valid ScaledObject: %v\n%s", err, out)
	}
	for name, bad := range map[string][2]string{
		"unknown field":     {"  minReplicaCount: 2\n", "  minReplicaCount: 2\n  minReplicas: 2\n"},
		"trigger metadata":  {"      metadata: {serverAddress", "      meta: {serverAddress"},
		"max replicas zero": {"maxReplicaCount: 8", "maxReplicaCount: 0"},
		"policy value":      {"periodSeconds: 60}", "periodSeconds: 60, valu: 3}"},
	} {
		m := strings.Replace(good, bad[0], bad[1], 1)
		if m == good {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if out, err := check("bad", m); err == nil || !strings.Contains(out, "Invalid: 1") {
			t.Errorf("%s: kubeconform accepted it: %v\n%s", name, err, out)
		} else {
			t.Logf("%s: %s", name, strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]))
		}
	}
}

// dotted is a get path written with dots: "env.0.name" (0 is an index).
func dotted(path string) []any {
	var p []any
	for _, s := range strings.Split(path, ".") {
		if s == "0" {
			p = append(p, 0)
		} else {
			p = append(p, s)
		}
	}
	return p
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestAlertRules checks the alerting rules with promtool.
func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool")
	out := run(t, ".", promtool, "check", "rules", "prometheus/alerts.yaml")
	if !strings.Contains(out, "SUCCESS: 13 rules found") {
		t.Errorf("promtool: %s", out)
	}
}

// TestWorkflows checks the GitHub Actions workflows with actionlint.
func TestWorkflows(t *testing.T) {
	actionlint := tool(t, "actionlint")
	files, err := filepath.Glob("../.github/workflows/*.yml")
	if err != nil || len(files) < 2 {
		t.Fatalf("workflows %v %v", files, err)
	}
	run(t, "..", actionlint, append([]string{"-shellcheck=", "-pyflakes="}, rel(files)...)...)
}

func rel(files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = strings.TrimPrefix(f, "../")
	}
	return out
}
