// Package kubeschema writes strict JSON schemas for Kubernetes kinds from
// their Go API types (k8s.io/api, the Prometheus Operator's monitoring/v1),
// in the file layout kubeconform's -schema-location template reads. The
// schema store kubeconform downloads by default is not reachable from every
// build machine; generating from the types the API server itself decodes
// into needs no network and cannot go stale against the pinned API version.
//
// A schema is strict: every object has additionalProperties false, so a
// misspelt or misplaced field fails validation, and apiVersion and kind are
// fixed to the kind's own. Types with their own JSON form (quantities,
// int-or-string, times) get the forms they accept.
package kubeschema

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Kind is one Kubernetes kind and the Go type it decodes into.
type Kind struct {
	APIVersion string // e.g. apps/v1, v1, monitoring.coreos.com/v1
	Kind       string // e.g. StatefulSet
	Type       reflect.Type
}

// Location is the kubeconform -schema-location template for a directory
// written by Write.
func Location(dir string) string {
	return filepath.Join(dir, "{{ .ResourceKind }}-{{ .Group }}-{{ .ResourceAPIVersion }}.json")
}

// Write writes the schema of every kind into dir, named as Location says.
func Write(dir string, kinds ...Kind) error {
	for _, k := range kinds {
		s := Schema(k.Type)
		props := s["properties"].(map[string]any)
		props["apiVersion"] = map[string]any{"type": "string", "enum": []string{k.APIVersion}}
		props["kind"] = map[string]any{"type": "string", "enum": []string{k.Kind}}
		s["required"] = []string{"apiVersion", "kind", "metadata"}
		s["$schema"] = "http://json-schema.org/draft-07/schema#"
		data, err := json.MarshalIndent(s, "", " ")
		if err != nil {
			return fmt.Errorf("schema of %s %s: %w", k.APIVersion, k.Kind, err)
		}
		// kubeconform's Group is the first part of apiVersion, its
		// ResourceAPIVersion the last (v1 gives v1 and v1).
		parts := strings.Split(k.APIVersion, "/")
		group, version := parts[0], parts[len(parts)-1]
		name := fmt.Sprintf("%s-%s-%s.json", strings.ToLower(k.Kind), group, version)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write schema: %w", err)
		}
	}
	return nil
}

var (
	quantityType    = reflect.TypeFor[resource.Quantity]()
	intOrStringType = reflect.TypeFor[intstr.IntOrString]()
	timeType        = reflect.TypeFor[metav1.Time]()
	microTimeType   = reflect.TypeFor[metav1.MicroTime]()
	durationType    = reflect.TypeFor[metav1.Duration]()
	marshalerType   = reflect.TypeFor[json.Marshaler]()
)

// Schema is the strict JSON schema of a Go API type.
func Schema(t reflect.Type) map[string]any {
	return schema(t, map[reflect.Type]bool{})
}

func nullable(s map[string]any) map[string]any {
	if typ, ok := s["type"].(string); ok {
		s["type"] = []string{typ, "null"}
	}
	return s
}

func schema(t reflect.Type, seen map[reflect.Type]bool) map[string]any {
	switch t {
	case quantityType:
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	case intOrStringType:
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	case timeType, microTimeType, durationType:
		return map[string]any{"type": []string{"string", "null"}}
	}
	if t.Kind() == reflect.Pointer {
		return nullable(schema(t.Elem(), seen))
	}
	if t.Kind() == reflect.Struct && (t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType)) {
		return map[string]any{} // its own JSON form (RawExtension and the like): anything
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": []string{"string", "null"}} // base64
		}
		return map[string]any{"type": []string{"array", "null"}, "items": schema(t.Elem(), seen)}
	case reflect.Map:
		return map[string]any{"type": []string{"object", "null"}, "additionalProperties": schema(t.Elem(), seen)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if seen[t] {
			return map[string]any{} // a recursive type: its inner levels are not checked
		}
		seen[t] = true
		defer delete(seen, t)
		props := map[string]any{}
		addFields(t, props, seen)
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	}
	panic(fmt.Sprintf("kubeschema: no schema for %s", t))
}

func addFields(t reflect.Type, props map[string]any, seen map[reflect.Type]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, props, seen)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schema(f.Type, seen)
	}
}
