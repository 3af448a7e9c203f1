// Package deploy holds mdp's deployment artefacts and their tests: the Helm
// chart (helm/mdp), the Grafana dashboard (grafana/mdp.json), the
// Prometheus alerts (prometheus/alerts.yaml), the daemonless image build of
// the repository's Dockerfile (image, cmd/mdp-image) and the schemas
// kubeconform checks the chart against (kubeschema).
//
// It is a module of its own (github.com/mdpio/mdp/deploy, replacing
// github.com/mdpio/mdp with the parent directory) so the Kubernetes and
// image libraries its tests need stay out of mdp's dependencies. Run its
// tests with `cd deploy && go test ./...`; .ci/run does.
//
// The tool checks (helm lint and template, kubeconform, promtool,
// actionlint) run the pinned tools .ci/run installs; a test
// whose tool is missing skips with the command that installs it, and fails
// under CI=true (internal/testenv).
package deploy
