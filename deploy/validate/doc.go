// Package validate checks the deployment assets under deploy/ the way CI
// runs them: the Helm chart is linted and rendered, every rendered and
// plain Kubernetes document is decoded strictly into the API types, the
// objects are checked against each other (selectors, ports, volumes,
// probes, security context), and every shipped Portcullis configuration is
// validated by the real binary (`portcullis -config FILE -check`), built
// with the Dockerfile's own `go build` command. The Grafana dashboard and
// the Prometheus alerting rules are parsed as Grafana and promtool would,
// and every metric they query is checked against what that binary exports
// when it runs.
//
// It is a module of its own so that the gateway's module stays free of
// Kubernetes, Helm and Prometheus server dependencies:
//
//	cd deploy/validate && go test ./...
package validate
