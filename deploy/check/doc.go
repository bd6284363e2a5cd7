// Package check holds the deployment checks of the DashStream gateway as Go
// tests: the Helm chart rendered and decoded strictly into the Kubernetes API
// types, and every metric named by the Grafana dashboard and the Prometheus
// rules found on a running gateway's /metrics. It is a separate module so that
// k8s.io/api and prometheus never enter the gateway's own go.mod.
//
// scripts/deploy-check.sh runs it with the tools it needs:
//
//	HELM=/path/to/helm DASHSTREAM_BIN=/path/to/dashstream go test ./...
//
// A test whose tool is not given skips and says which variable to set.
package check
