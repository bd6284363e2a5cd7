package check

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "../helm/dashstream"

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor the
// chart uses. The operator's Go types would pull its whole API module for one
// object, so this minimal struct stands in for them; it is decoded as strictly
// as the Kubernetes types (an unknown or misspelt field fails).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is every object of one `helm template`, decoded by kind.
type rendered struct {
	deployment     *appsv1.Deployment
	service        *corev1.Service
	serviceAccount *corev1.ServiceAccount
	ingress        *networkingv1.Ingress
	pdb            *policyv1.PodDisruptionBudget
	hpa            *autoscalingv2.HorizontalPodAutoscaler
	networkPolicy  *networkingv1.NetworkPolicy
	serviceMonitor *serviceMonitor
}

func helmBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		t.Skip("HELM is not set: run scripts/deploy-check.sh, or set HELM to a helm v3 binary")
	}
	return bin
}

// helmTemplate renders the chart with the given values files and --set pairs.
func helmTemplate(t *testing.T, valuesFiles []string, sets ...string) ([]byte, error) {
	t.Helper()
	args := []string{"template", "dashstream", chartDir, "--namespace", "stream"}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helmBin(t), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// render renders the chart and decodes every document strictly into its
// Kubernetes type; a kind the chart should not produce fails the test.
func render(t *testing.T, valuesFiles ...string) rendered {
	t.Helper()
	out, err := helmTemplate(t, valuesFiles)
	if err != nil {
		t.Fatal(err)
	}
	var r rendered
	for _, doc := range strings.Split(string(out), "\n---") {
		doc = strings.TrimSpace(doc)
		if doc == "" || isComment(doc) {
			continue
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document without apiVersion/kind: %v\n%s", err, doc)
		}
		var target any
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 Deployment":
			r.deployment = &appsv1.Deployment{}
			target = r.deployment
		case "v1 Service":
			r.service = &corev1.Service{}
			target = r.service
		case "v1 ServiceAccount":
			r.serviceAccount = &corev1.ServiceAccount{}
			target = r.serviceAccount
		case "networking.k8s.io/v1 Ingress":
			r.ingress = &networkingv1.Ingress{}
			target = r.ingress
		case "policy/v1 PodDisruptionBudget":
			r.pdb = &policyv1.PodDisruptionBudget{}
			target = r.pdb
		case "autoscaling/v2 HorizontalPodAutoscaler":
			r.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
			target = r.hpa
		case "networking.k8s.io/v1 NetworkPolicy":
			r.networkPolicy = &networkingv1.NetworkPolicy{}
			target = r.networkPolicy
		case "monitoring.coreos.com/v1 ServiceMonitor":
			r.serviceMonitor = &serviceMonitor{}
			target = r.serviceMonitor
		default:
			t.Fatalf("unexpected object %s %s", meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
			t.Fatalf("%s does not decode strictly: %v\n%s", meta.Kind, err, doc)
		}
	}
	if r.deployment == nil || r.service == nil {
		t.Fatalf("no Deployment or Service rendered:\n%s", out)
	}
	return r
}

func isComment(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := make(map[string]corev1.EnvVar, len(c.Env))
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

// checkPod holds what every rendering must satisfy.
func checkPod(t *testing.T, d *appsv1.Deployment, opsPort string) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	env := envOf(c)

	shutdown, err := strconv.Atoi(env["SHUTDOWN_TIMEOUT_SECS"].Value)
	if err != nil {
		t.Fatalf("SHUTDOWN_TIMEOUT_SECS: %v", err)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= int64(shutdown) {
		t.Errorf("terminationGracePeriodSeconds %v not above SHUTDOWN_TIMEOUT_SECS %d", g, shutdown)
	}
	if e := env["INSTANCE_ID"]; e.Value != "$(POD_NAME)" {
		t.Errorf("INSTANCE_ID = %+v, want $(POD_NAME)", e)
	}
	if e := env["POD_NAME"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("POD_NAME not from the downward API: %+v", e)
	}
	for name, want := range map[string]string{"WEBSOCKET_HOST": "0.0.0.0", "WEBSOCKET_PORT": "3002"} {
		if env[name].Value != want {
			t.Errorf("%s = %q, want %q", name, env[name].Value, want)
		}
	}
	if env["KAFKA_BROKERS"].Value == "" {
		t.Error("KAFKA_BROKERS not set: the gateway would start its embedded broker")
	}

	probes := map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
	for name, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", name)
			continue
		}
		want := "/healthz"
		if name == "readiness" {
			want = "/readyz"
		}
		if p.HTTPGet.Path != want || p.HTTPGet.Port.String() != opsPort {
			t.Errorf("%s probe %s on %s, want %s on %s", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), want, opsPort)
		}
	}
	if !hasPort(c, opsPort) {
		t.Errorf("probe port %q is not a container port", opsPort)
	}

	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("root filesystem not read-only")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("privilege escalation allowed")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod may run as root")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("resource requests missing: %v", c.Resources.Requests)
	}
	if !strings.HasPrefix(env["EXPECTED_SCHEMAS_PATH"].Value, mountOf(c, "state")+"/") {
		t.Errorf("EXPECTED_SCHEMAS_PATH %q is not on the writable state volume", env["EXPECTED_SCHEMAS_PATH"].Value)
	}
	// Secrets are references only: no secret value in the rendered objects.
	for _, name := range []string{"WEBSOCKET_AUTH_TOKEN", "WEBSOCKET_JWT_SECRET", "KAFKA_SASL_PASSWORD", "ADMIN_TOKEN"} {
		if e, ok := env[name]; ok && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("%s is not a secretKeyRef: %+v", name, e)
		}
	}
	if e, ok := env["REDIS_URL"]; ok && e.Value != "" && strings.Contains(e.Value, "@") {
		t.Errorf("REDIS_URL with credentials in plain text: %q", e.Value)
	}
}

func hasPort(c corev1.Container, name string) bool {
	for _, p := range c.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

func mountOf(c corev1.Container, volume string) string {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	return "\x00no mount"
}

func secretRef(t *testing.T, c corev1.Container, name string) *corev1.SecretKeySelector {
	t.Helper()
	e, ok := envOf(c)[name]
	if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Fatalf("%s is not read from a Secret: %+v", name, e)
	}
	return e.ValueFrom.SecretKeyRef
}

func TestChartDefaultValues(t *testing.T) {
	r := render(t)
	checkPod(t, r.deployment, "internal")
	c := r.deployment.Spec.Template.Spec.Containers[0]
	if ref := secretRef(t, c, "WEBSOCKET_AUTH_TOKEN"); ref.Name != "dashstream-auth" || ref.Key != "token" {
		t.Errorf("default auth token reference %+v", ref)
	}
	if got := envOf(c)["INTERNAL_ADDR"].Value; got != "0.0.0.0:9002" {
		t.Errorf("INTERNAL_ADDR = %q by default, want the internal listener on 0.0.0.0:9002", got)
	}
	offValues := filepath.Join(t.TempDir(), "internal-off.yaml")
	if err := os.WriteFile(offValues, []byte("internalListener:\n  enabled: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	off := render(t, offValues)
	checkPod(t, off.deployment, "http")
	if _, ok := envOf(off.deployment.Spec.Template.Spec.Containers[0])["INTERNAL_ADDR"]; ok {
		t.Error("INTERNAL_ADDR set although internalListener is off")
	}
	if r.pdb == nil || r.networkPolicy == nil {
		t.Error("PodDisruptionBudget and NetworkPolicy are on by default")
	}
	if r.ingress != nil || r.hpa != nil || r.serviceMonitor != nil {
		t.Error("ingress, HPA and ServiceMonitor are off by default")
	}
	if r.deployment.Spec.Replicas == nil || *r.deployment.Spec.Replicas < 2 {
		t.Error("fewer than 2 replicas by default: the PDB would block every drain")
	}
}

func TestChartProductionValues(t *testing.T) {
	r := render(t, "../helm/values-production.yaml")
	checkPod(t, r.deployment, "internal")
	c := r.deployment.Spec.Template.Spec.Containers[0]
	env := envOf(c)
	if env["INTERNAL_ADDR"].Value != "0.0.0.0:9002" {
		t.Errorf("INTERNAL_ADDR = %q", env["INTERNAL_ADDR"].Value)
	}
	for name, want := range map[string]string{
		"KAFKA_SASL_PASSWORD": "dashstream-kafka", "REDIS_URL": "dashstream-redis",
		"WEBSOCKET_JWT_SECRET": "dashstream-auth", "ADMIN_TOKEN": "dashstream-admin",
	} {
		if ref := secretRef(t, c, name); ref.Name != want {
			t.Errorf("%s from Secret %q, want %q", name, ref.Name, want)
		}
	}
	if r.deployment.Spec.Replicas != nil {
		t.Error("replicas set although the HPA owns them")
	}

	if r.ingress == nil {
		t.Fatal("no Ingress")
	}
	ann := r.ingress.Annotations
	for _, k := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
		if v, err := strconv.Atoi(ann[k]); err != nil || v < 600 {
			t.Errorf("%s = %q: WebSocket connections need a long timeout", k, ann[k])
		}
	}
	if len(r.ingress.Spec.TLS) == 0 {
		t.Error("production ingress without TLS")
	}

	if r.hpa == nil || len(r.hpa.Spec.Metrics) != 1 || r.hpa.Spec.Metrics[0].Pods == nil ||
		r.hpa.Spec.Metrics[0].Pods.Metric.Name != "websocket_connected_clients" {
		t.Fatalf("HPA does not scale on websocket_connected_clients: %+v", r.hpa)
	}
	if r.hpa.Spec.ScaleTargetRef.Name != r.deployment.Name {
		t.Errorf("HPA targets %q, the Deployment is %q", r.hpa.Spec.ScaleTargetRef.Name, r.deployment.Name)
	}

	if r.serviceMonitor == nil || len(r.serviceMonitor.Spec.Endpoints) != 1 {
		t.Fatal("no ServiceMonitor endpoint")
	}
	ep := r.serviceMonitor.Spec.Endpoints[0]
	if ep.Port != "internal" || ep.Path != "/metrics" {
		t.Errorf("ServiceMonitor scrapes %s on %q, want /metrics on internal", ep.Path, ep.Port)
	}
	if !servicePortNamed(r.service, "internal") {
		t.Error("Service has no port named internal for the ServiceMonitor")
	}
	for k, v := range r.serviceMonitor.Spec.Selector.MatchLabels {
		if r.service.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s does not match the Service", k, v)
		}
	}
	if r.networkPolicy == nil || len(r.networkPolicy.Spec.Ingress) != 2 {
		t.Errorf("NetworkPolicy should open the client and the internal port separately: %+v", r.networkPolicy)
	}
}

func servicePortNamed(s *corev1.Service, name string) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// TestChartRefusesUnauthenticatedPublicBind: the gateway would exit with
// status 2; the chart says why at install time instead.
func TestChartRefusesUnauthenticatedPublicBind(t *testing.T) {
	_, err := helmTemplate(t, nil, "auth.tokenSecret.name=")
	if err == nil || !strings.Contains(err.Error(), "insecurePublic") {
		t.Fatalf("rendering without auth: %v", err)
	}
	if _, err := helmTemplate(t, nil, "auth.tokenSecret.name=", "auth.insecurePublic=true"); err != nil {
		t.Fatalf("insecurePublic=true: %v", err)
	}
}
