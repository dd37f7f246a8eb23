package validate

// objects_test.go checks a set of objects meant to be applied together (one
// directory under deploy/kubernetes, or one rendering of the chart) against
// each other and against what Portcullis needs: selectors select, named
// ports and volumes exist, the gateway container is locked down and probed,
// its configuration file and secret files are where the configuration says,
// Services, Ingresses and Traefik routes point at things that exist.

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// gatewayContainer is the container name the assets give Portcullis.
const gatewayContainer = "portcullis"

// applicationServices are the example applications the manifests protect;
// they are not part of the assets, so routes to them point outside the set.
var applicationServices = []string{"dashboard"}

// assetSet is a set of objects applied together.
type assetSet struct {
	name    string
	objects []object
}

func (a assetSet) ofKind(kind string) []object {
	var out []object
	for _, o := range a.objects {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (a assetSet) find(kind, namespace, name string) (object, bool) {
	for _, o := range a.objects {
		if o.kind == kind && o.namespace == namespace && o.name == name {
			return o, true
		}
	}
	return object{}, false
}

// gateway is one Portcullis container found in the set, with its
// configuration.
type gateway struct {
	deployment object
	pod        *corev1.PodTemplateSpec
	container  corev1.Container
	config     *gatewayConfig
	env        map[string]string
}

// checkSet runs every cross-object check and returns the gateways found.
func checkSet(t *testing.T, a assetSet) []gateway {
	t.Helper()
	seen := map[string]bool{}
	for _, o := range a.objects {
		id := o.kind + " " + o.namespace + "/" + o.name
		if seen[id] {
			t.Errorf("%s: %s appears twice", a.name, id)
		}
		seen[id] = true
	}
	var gws []gateway
	for _, o := range a.ofKind("apps/v1/Deployment") {
		gws = append(gws, checkDeployment(t, a, o)...)
	}
	for _, o := range a.ofKind("v1/Service") {
		checkService(t, a, o)
	}
	for _, o := range a.ofKind("policy/v1/PodDisruptionBudget") {
		checkPDB(t, a, o)
	}
	for _, o := range a.ofKind("networking.k8s.io/v1/Ingress") {
		checkIngress(t, a, o)
	}
	for _, o := range a.ofKind("traefik.io/v1alpha1/Middleware") {
		checkMiddleware(t, a, o)
	}
	for _, o := range a.ofKind("traefik.io/v1alpha1/IngressRoute") {
		checkIngressRoute(t, a, o)
	}
	for _, o := range a.ofKind("monitoring.coreos.com/v1/ServiceMonitor") {
		checkServiceMonitor(t, a, o)
	}
	for _, gw := range gws {
		checkPublicRoute(t, a, gw)
	}
	return gws
}

func selects(sel *metav1.LabelSelector, podLabels map[string]string) (bool, error) {
	if sel == nil {
		return false, fmt.Errorf("no selector")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	if s.Empty() {
		return false, fmt.Errorf("empty selector selects every pod")
	}
	return s.Matches(labels.Set(podLabels)), nil
}

func checkDeployment(t *testing.T, a assetSet, o object) []gateway {
	d := o.value.(*appsv1.Deployment)
	pod := &d.Spec.Template
	if ok, err := selects(d.Spec.Selector, pod.Labels); err != nil || !ok {
		t.Errorf("%s: spec.selector does not select the pod template's labels (%v)", o, err)
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if replicas > 1 && !hasPDB(a, o.namespace, pod.Labels) {
		t.Errorf("%s: %d replicas and no PodDisruptionBudget selecting them", o, replicas)
	}
	spec := &pod.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken is not false; nothing here calls the Kubernetes API", o)
	}
	if sa := spec.ServiceAccountName; sa != "" && sa != "default" {
		if _, ok := a.find("v1/ServiceAccount", o.namespace, sa); !ok {
			t.Errorf("%s: serviceAccountName %s is not in the set", o, sa)
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		if v.ConfigMap != nil {
			if _, ok := a.find("v1/ConfigMap", o.namespace, v.ConfigMap.Name); !ok {
				t.Errorf("%s: volume %s: ConfigMap %s is not in the set", o, v.Name, v.ConfigMap.Name)
			}
		}
	}
	var gws []gateway
	for _, c := range spec.Containers {
		where := fmt.Sprintf("%s container %s", o, c.Name)
		checkContainerSecurity(t, where, spec.SecurityContext, c)
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: wants cpu and memory requests and a memory limit, has %v", where, c.Resources)
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("%s: volumeMount %s names no volume", where, m.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.ContainerName != c.Name {
				t.Errorf("%s: env %s reads another container's resources", where, e.Name)
			}
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.StrVal != "" && !hasPort(c, p.HTTPGet.Port.StrVal) {
				t.Errorf("%s: a probe uses port %q, which the container does not name", where, p.HTTPGet.Port.StrVal)
			}
		}
		if c.Name == gatewayContainer {
			if gw, ok := checkGatewayContainer(t, a, o, pod, c, volumes); ok {
				gws = append(gws, gw)
			}
		}
	}
	return gws
}

func hasPort(c corev1.Container, name string) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
}

func hasPDB(a assetSet, namespace string, podLabels map[string]string) bool {
	for _, o := range a.ofKind("policy/v1/PodDisruptionBudget") {
		if ok, _ := selects(o.value.(*policyv1.PodDisruptionBudget).Spec.Selector, podLabels); ok && o.namespace == namespace {
			return true
		}
	}
	return false
}

// checkContainerSecurity: non-root, no privilege escalation, read-only root
// filesystem, no capabilities, the runtime's default seccomp profile.
func checkContainerSecurity(t *testing.T, where string, pod *corev1.PodSecurityContext, c corev1.Container) {
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("%s: no securityContext", where)
		return
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil && pod != nil {
		nonRoot = pod.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		t.Errorf("%s: runAsNonRoot is not true", where)
	}
	uid := sc.RunAsUser
	if uid == nil && pod != nil {
		uid = pod.RunAsUser
	}
	if uid != nil && *uid == 0 {
		t.Errorf("%s: runs as uid 0", where)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", where)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", where)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not true", where)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities %v, want drop [ALL] and no add", where, sc.Capabilities)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil && pod != nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile is not RuntimeDefault", where)
	}
}

// checkGatewayContainer checks the Portcullis container: the image's
// command line, probes on /ping and /ready on the port the configuration
// listens on, and that every file the configuration names is mounted.
func checkGatewayContainer(t *testing.T, a assetSet, o object, pod *corev1.PodTemplateSpec, c corev1.Container, volumes map[string]corev1.Volume) (gateway, bool) {
	where := fmt.Sprintf("%s container %s", o, c.Name)
	if len(c.Command) > 0 {
		t.Errorf("%s: command %q overrides the image's entrypoint %s", where, c.Command, imageEntrypoint)
	}
	args := c.Args
	if len(args) == 0 {
		args = []string{"-config", imageConfigPath}
	}
	if len(args) != 2 || args[0] != "-config" {
		t.Errorf("%s: args %q, want -config FILE", where, args)
		return gateway{}, false
	}
	cm, key, ok := mountedConfigMapKey(c, volumes, args[1])
	if !ok {
		t.Errorf("%s: the configuration file %s is not a key of a mounted ConfigMap", where, args[1])
		return gateway{}, false
	}
	cmObj, ok := a.find("v1/ConfigMap", o.namespace, cm)
	if !ok {
		return gateway{}, false // reported with the volume
	}
	text, ok := cmObj.value.(*corev1.ConfigMap).Data[key]
	if !ok {
		t.Errorf("%s: ConfigMap %s has no key %s", where, cm, key)
		return gateway{}, false
	}
	cfg, err := parseGatewayConfig(cmObj.String()+" "+key, text)
	if err != nil {
		t.Error(err)
		return gateway{}, false
	}

	// The listener and the probes.
	listen := cfg.lookup("server.listen")
	_, port, _ := strings.Cut(listen, ":")
	if host, _, _ := strings.Cut(listen, ":"); host == "127.0.0.1" || host == "localhost" {
		t.Errorf("%s: server.listen %q is loopback: the kubelet and Services cannot reach it", where, listen)
	}
	var httpPort *corev1.ContainerPort
	for i, p := range c.Ports {
		if p.Name == "http" {
			httpPort = &c.Ports[i]
		}
	}
	if httpPort == nil || strconv.Itoa(int(httpPort.ContainerPort)) != port {
		t.Errorf("%s: server.listen %q and the container port named http (%v) disagree", where, listen, httpPort)
	}
	// A metrics listener off loopback is there to be scraped: it needs a
	// container port, and the scrape annotation must name it.
	if m := cfg.lookup("metrics.listen"); m != "" {
		host, mport, _ := strings.Cut(m, ":")
		if host != "127.0.0.1" && host != "localhost" {
			if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
				return p.Name == "metrics" && strconv.Itoa(int(p.ContainerPort)) == mport
			}) {
				t.Errorf("%s: metrics.listen %q has no container port named metrics", where, m)
			}
			if a, ok := pod.Annotations["prometheus.io/port"]; ok && a != mport {
				t.Errorf("%s: prometheus.io/port %s, but metrics.listen is %q", where, a, m)
			}
		}
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"livenessProbe", c.LivenessProbe, "/ping"}, {"readinessProbe", c.ReadinessProbe, "/ready"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s: %s is not httpGet %s on port http", where, p.name, p.path)
		}
	}

	// Every file the configuration names is a mounted secret file, and
	// every mounted secret file is named.
	provided := mountedSecretFiles(c, volumes)
	named := map[string]bool{}
	for _, f := range cfg.files() {
		named[f.node.Value] = true
		if !provided[f.node.Value] {
			t.Errorf("%s: %s: %s is not a file of a mounted Secret (mounted: %v)", where, f.key, f.node.Value, sortedKeys(provided))
		}
	}
	for f := range provided {
		if !named[f] {
			t.Errorf("%s: the Secret file %s is mounted but the configuration does not use it", where, f)
		}
	}

	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		} else {
			env[e.Name] = "placeholder"
		}
	}
	return gateway{deployment: o, pod: pod, container: c, config: cfg, env: env}, true
}

// mountedConfigMapKey finds the ConfigMap key that appears at file.
func mountedConfigMapKey(c corev1.Container, volumes map[string]corev1.Volume, file string) (configMap, key string, ok bool) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		v, vok := volumes[m.Name]
		if !ok || !vok || v.ConfigMap == nil {
			continue
		}
		if m.SubPath != "" {
			continue // subPath mounts never see ConfigMap updates; not used here
		}
		if len(v.ConfigMap.Items) == 0 {
			return v.ConfigMap.Name, rel, true
		}
		for _, it := range v.ConfigMap.Items {
			if it.Path == rel {
				return v.ConfigMap.Name, it.Key, true
			}
		}
	}
	return "", "", false
}

// mountedSecretFiles lists the files the container's Secret and projected
// volumes provide. Every Secret volume must list its items, so that the
// set of files is known.
func mountedSecretFiles(c corev1.Container, volumes map[string]corev1.Volume) map[string]bool {
	out := map[string]bool{}
	add := func(mount string, items []corev1.KeyToPath) {
		for _, it := range items {
			out[path.Join(mount, it.Path)] = true
		}
	}
	for _, m := range c.VolumeMounts {
		v := volumes[m.Name]
		switch {
		case v.Secret != nil:
			add(m.MountPath, v.Secret.Items)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					add(m.MountPath, s.Secret.Items)
				}
			}
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// podsSelectedBy returns the pod templates of the set's Deployments in
// namespace that sel selects.
func podsSelectedBy(a assetSet, namespace string, sel map[string]string) []*corev1.PodTemplateSpec {
	var out []*corev1.PodTemplateSpec
	for _, o := range a.ofKind("apps/v1/Deployment") {
		pod := &o.value.(*appsv1.Deployment).Spec.Template
		if o.namespace == namespace && len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(pod.Labels)) {
			out = append(out, pod)
		}
	}
	return out
}

func checkService(t *testing.T, a assetSet, o object) {
	svc := o.value.(*corev1.Service)
	pods := podsSelectedBy(a, o.namespace, svc.Spec.Selector)
	if len(pods) == 0 {
		t.Errorf("%s: selector %v selects no Deployment's pods in the set", o, svc.Spec.Selector)
		return
	}
	for _, p := range svc.Spec.Ports {
		for _, pod := range pods {
			found := false
			for _, c := range pod.Spec.Containers {
				for _, cp := range c.Ports {
					if (p.TargetPort.StrVal != "" && cp.Name == p.TargetPort.StrVal) ||
						(p.TargetPort.StrVal == "" && cp.ContainerPort == p.TargetPort.IntVal) {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("%s: port %s targets %s, which no container of the selected pods has", o, p.Name, p.TargetPort.String())
			}
		}
	}
}

func checkPDB(t *testing.T, a assetSet, o object) {
	pdb := o.value.(*policyv1.PodDisruptionBudget)
	if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
		t.Errorf("%s: neither minAvailable nor maxUnavailable", o)
	}
	for _, d := range a.ofKind("apps/v1/Deployment") {
		dep := d.value.(*appsv1.Deployment)
		if ok, _ := selects(pdb.Spec.Selector, dep.Spec.Template.Labels); ok && d.namespace == o.namespace {
			if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
				t.Errorf("%s: selects %s, which has fewer than 2 replicas: draining a node would block", o, d)
			}
			return
		}
	}
	t.Errorf("%s: selects no Deployment in the set", o)
}

// checkServiceRef checks a route's Service and port.
func checkServiceRef(t *testing.T, a assetSet, where, namespace, name string, port int32) {
	if slices.Contains(applicationServices, name) {
		return
	}
	s, ok := a.find("v1/Service", namespace, name)
	if !ok {
		t.Errorf("%s: routes to Service %s/%s, which is not in the set", where, namespace, name)
		return
	}
	if !slices.ContainsFunc(s.value.(*corev1.Service).Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port }) {
		t.Errorf("%s: routes to %s port %d, which the Service does not have", where, s, port)
	}
}

// checkAuthURL checks a forward-auth address: a Service of the set, by its
// cluster DNS name, and the gateway's /oauth2/auth (or /oauth2/forward_auth).
func checkAuthURL(t *testing.T, a assetSet, where, raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		t.Errorf("%s: auth address %q: %v", where, raw, err)
		return
	}
	parts := strings.Split(u.Hostname(), ".")
	if len(parts) != 5 || parts[2] != "svc" || parts[3] != "cluster" || parts[4] != "local" {
		t.Errorf("%s: auth address %q is not SERVICE.NAMESPACE.svc.cluster.local", where, raw)
		return
	}
	port, _ := strconv.Atoi(u.Port())
	checkServiceRef(t, a, where, parts[1], parts[0], int32(port))
	if u.Path != "/oauth2/auth" && u.Path != "/oauth2/forward_auth" {
		t.Errorf("%s: auth address %q calls neither /oauth2/auth nor /oauth2/forward_auth", where, raw)
	}
}

func checkIngress(t *testing.T, a assetSet, o object) {
	ing := o.value.(*networkingv1.Ingress)
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName == "" {
		t.Errorf("%s: no ingressClassName", o)
	}
	if u, ok := ing.Annotations["nginx.ingress.kubernetes.io/auth-url"]; ok {
		checkAuthURL(t, a, o.String(), u)
	}
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			t.Errorf("%s: rule for %s has no http paths", o, r.Host)
			continue
		}
		for _, p := range r.HTTP.Paths {
			if p.PathType == nil {
				t.Errorf("%s: path %s has no pathType", o, p.Path)
			}
			if p.Backend.Service == nil {
				t.Errorf("%s: path %s has no Service backend", o, p.Path)
				continue
			}
			checkServiceRef(t, a, o.String(), o.namespace, p.Backend.Service.Name, p.Backend.Service.Port.Number)
		}
	}
}

func checkMiddleware(t *testing.T, a assetSet, o object) {
	m := o.value.(*traefikMiddleware)
	if m.Spec.ForwardAuth == nil {
		t.Errorf("%s: not a forwardAuth middleware", o)
		return
	}
	checkAuthURL(t, a, o.String(), m.Spec.ForwardAuth.Address)
}

func checkIngressRoute(t *testing.T, a assetSet, o object) {
	r := o.value.(*traefikIngressRoute)
	for _, rt := range r.Spec.Routes {
		if rt.Kind != "Rule" || rt.Match == "" {
			t.Errorf("%s: route %q: want kind Rule and a match", o, rt.Match)
		}
		for _, m := range rt.Middlewares {
			ns := m.Namespace
			if ns == "" {
				ns = o.namespace
			}
			if _, ok := a.find("traefik.io/v1alpha1/Middleware", ns, m.Name); !ok {
				t.Errorf("%s: route %q uses Middleware %s/%s, which is not in the set", o, rt.Match, ns, m.Name)
			}
		}
		for _, s := range rt.Services {
			if s.Namespace != "" && s.Namespace != o.namespace {
				t.Errorf("%s: route %q names a Service in another namespace; Traefik refuses that unless allowCrossNamespace is on", o, rt.Match)
			}
			checkServiceRef(t, a, o.String(), o.namespace, s.Name, s.Port)
		}
	}
}

// checkPublicRoute: when the set routes anything to the gateway's Service,
// it must route public_url's host and the endpoint prefix there, or the
// callback registered at the provider leads nowhere.
func checkPublicRoute(t *testing.T, a assetSet, gw gateway) {
	var services []string
	for _, o := range a.ofKind("v1/Service") {
		svc := o.value.(*corev1.Service)
		if o.namespace == gw.deployment.namespace && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(gw.pod.Labels)) {
			services = append(services, o.name)
		}
	}
	public, err := url.Parse(gw.config.lookup("server.public_url"))
	if err != nil || public.Host == "" {
		t.Errorf("%s: server.public_url %q is not a URL", gw.config.source, gw.config.lookup("server.public_url"))
		return
	}
	prefix := gw.config.lookup("server.prefix")
	if prefix == "" {
		prefix = "/oauth2"
	}
	routed, routesPublic := false, false
	for _, o := range a.ofKind("networking.k8s.io/v1/Ingress") {
		if o.namespace != gw.deployment.namespace {
			continue
		}
		for _, r := range o.value.(*networkingv1.Ingress).Spec.Rules {
			for _, p := range r.HTTP.Paths {
				if p.Backend.Service != nil && slices.Contains(services, p.Backend.Service.Name) {
					routed = true
					if r.Host == public.Hostname() && (p.Path == prefix || p.Path == prefix+"/" || p.Path == "/") {
						routesPublic = true
					}
				}
			}
		}
	}
	for _, o := range a.ofKind("traefik.io/v1alpha1/IngressRoute") {
		if o.namespace != gw.deployment.namespace {
			continue
		}
		for _, rt := range o.value.(*traefikIngressRoute).Spec.Routes {
			for _, s := range rt.Services {
				if slices.Contains(services, s.Name) {
					routed = true
					if strings.Contains(rt.Match, "Host(`"+public.Hostname()+"`)") && strings.Contains(rt.Match, "PathPrefix(`"+prefix) {
						routesPublic = true
					}
				}
			}
		}
	}
	if routed && !routesPublic {
		t.Errorf("%s: routes reach the gateway, but none routes %s%s (server.public_url and prefix) to it", a.name, public.Hostname(), prefix)
	}
}
