package validate

// decode_test.go turns YAML documents into typed Kubernetes objects and
// refuses what the API server would refuse in strict field validation: a
// field the type does not have, a field spelled in another case, a key
// given twice, or a kind nobody registered here.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// object is one decoded document.
type object struct {
	source    string // file#index or chart template
	kind      string // apiVersion/kind
	name      string
	namespace string // as written; "" is the namespace it is applied to
	value     metav1.Object
}

func (o object) String() string {
	return fmt.Sprintf("%s %s/%s (%s)", o.kind, o.namespace, o.name, o.source)
}

// kinds are the API types the deployment assets may use. Traefik's and
// the Prometheus Operator's CRDs have no Go types here; their structs
// (below, and in monitoring_test.go) list exactly the fields the assets use.
var kinds = map[string]func() metav1.Object{
	"v1/ConfigMap":                     func() metav1.Object { return new(corev1.ConfigMap) },
	"v1/Service":                       func() metav1.Object { return new(corev1.Service) },
	"v1/ServiceAccount":                func() metav1.Object { return new(corev1.ServiceAccount) },
	"apps/v1/Deployment":               func() metav1.Object { return new(appsv1.Deployment) },
	"policy/v1/PodDisruptionBudget":    func() metav1.Object { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1/Ingress":     func() metav1.Object { return new(networkingv1.Ingress) },
	"traefik.io/v1alpha1/Middleware":   func() metav1.Object { return new(traefikMiddleware) },
	"traefik.io/v1alpha1/IngressRoute": func() metav1.Object { return new(traefikIngressRoute) },

	"monitoring.coreos.com/v1/ServiceMonitor": func() metav1.Object { return new(serviceMonitor) },
	"monitoring.coreos.com/v1/PrometheusRule": func() metav1.Object { return new(prometheusRule) },
}

// traefikMiddleware is traefik.io/v1alpha1 Middleware, forwardAuth only.
type traefikMiddleware struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ForwardAuth *struct {
			Address                  string   `json:"address"`
			TrustForwardHeader       bool     `json:"trustForwardHeader"`
			AuthResponseHeaders      []string `json:"authResponseHeaders"`
			AuthRequestHeaders       []string `json:"authRequestHeaders,omitempty"`
			AddAuthCookiesToResponse []string `json:"addAuthCookiesToResponse,omitempty"`
		} `json:"forwardAuth"`
	} `json:"spec"`
}

// traefikIngressRoute is traefik.io/v1alpha1 IngressRoute.
type traefikIngressRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		EntryPoints []string `json:"entryPoints"`
		Routes      []struct {
			Match       string `json:"match"`
			Kind        string `json:"kind"`
			Priority    int    `json:"priority,omitempty"`
			Middlewares []struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace,omitempty"`
			} `json:"middlewares,omitempty"`
			Services []struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace,omitempty"`
				Port      int32  `json:"port"`
			} `json:"services"`
		} `json:"routes"`
		TLS *struct {
			SecretName   string `json:"secretName,omitempty"`
			CertResolver string `json:"certResolver,omitempty"`
		} `json:"tls,omitempty"`
	} `json:"spec"`
}

// decodeFile decodes every document of a YAML file.
func decodeFile(path string) ([]object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeStream(display(path), data)
}

// decodeStream decodes every non-empty document of a YAML stream.
func decodeStream(source string, data []byte) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []object
	var errs []error
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: splitting documents: %w", source, err)
		}
		if emptyDocument(doc) {
			continue
		}
		o, err := decodeDocument(fmt.Sprintf("%s#%d", source, i), doc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, o)
	}
	return out, errors.Join(errs...)
}

// emptyDocument reports whether doc holds nothing but comments.
func emptyDocument(doc []byte) bool {
	for line := range strings.SplitSeq(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// decodeDocument decodes one document into the type its apiVersion and
// kind name, strictly.
func decodeDocument(source string, doc []byte) (object, error) {
	j, err := yaml.YAMLToJSONStrict(doc) // duplicate keys are errors
	if err != nil {
		return object{}, fmt.Errorf("%s: %w", source, err)
	}
	var tm metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(j, &tm); err != nil {
		return object{}, fmt.Errorf("%s: reading apiVersion and kind: %w", source, err)
	}
	kind := tm.APIVersion + "/" + tm.Kind
	newObject := kinds[kind]
	if newObject == nil {
		known := slices.Sorted(maps.Keys(kinds))
		return object{}, fmt.Errorf("%s: %q is not a kind the deployment assets may use (known: %s)", source, kind, strings.Join(known, ", "))
	}
	v := newObject()
	strict, err := sigsjson.UnmarshalStrict(j, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return object{}, fmt.Errorf("%s: decoding %s: %w", source, kind, err)
	}
	if len(strict) > 0 {
		return object{}, fmt.Errorf("%s: %s %q: %w", source, kind, v.GetName(), errors.Join(strict...))
	}
	if v.GetName() == "" {
		return object{}, fmt.Errorf("%s: %s has no metadata.name", source, kind)
	}
	return object{source: source, kind: kind, name: v.GetName(), namespace: v.GetNamespace(), value: v}, nil
}
