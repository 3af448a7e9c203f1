package server

import (
	"net/http"
	"strconv"
	"strings"
)

type obj = map[string]any

// op describes one route for the OpenAPI document.
type op struct {
	summary string
	query   []param
	body    bool   // takes a job file
	ok      int    // success status
	result  string // schema of the success body ("" for none)
	errors  []int
	ws      bool
}

type param struct{ name, typ, desc string }

// operations documents every route the API may serve, keyed like the
// ServeMux patterns. TestOpenAPIMatchesRoutes fails when a route is
// registered without an entry here or an entry names no route.
var operations = map[string]op{
	"GET /metrics":             {summary: "Prometheus metrics of every job (text format).", ok: 200, result: "text"},
	"GET /healthz":             {summary: "The process is up (never needs a token).", ok: 200, result: "Object"},
	"GET /readyz":              {summary: "Ready to serve (never needs a token); 503 when not.", ok: 200, result: "Object", errors: []int{503}},
	"GET /api/v1/openapi.json": {summary: "This document.", ok: 200, result: "Object"},
	"GET /api/v1/jobs":         {summary: "Every job's status, without per-node detail.", ok: 200, result: "JobList"},
	"POST /api/v1/jobs": {summary: "Register a job file (YAML or JSON) and start it.", body: true, ok: 201, result: "JobStatus",
		query: []param{
			{"start", "boolean", "false: only register the job (default true)"},
			{"name", "string", "the job's name, overriding the file's name key"},
			{"filename", "string", "the name the file goes by in error positions and, without a name key, the job's name (default job.yaml)"},
		}, errors: []int{400, 409, 413}},
	"GET /api/v1/jobs/{name}": {summary: "A job's status with its current or last run's per-node detail.", ok: 200, result: "JobStatus", errors: []int{404}},
	"PUT /api/v1/jobs/{name}": {summary: "Replace a job's definition; a running job is drained and started again.", body: true, ok: 200, result: "JobStatus",
		query: []param{{"filename", "string", "the name the file goes by in error positions"}}, errors: []int{400, 404, 413}},
	"DELETE /api/v1/jobs/{name}": {summary: "Delete a job that is not running (or abort and delete it with force).", ok: 200, result: "Object",
		query: []param{{"force", "boolean", "abort a running job and delete it"}}, errors: []int{404, 409}},
	"POST /api/v1/jobs/{name}/stop":  {summary: "Stop a job gracefully and wait until it has drained.", ok: 200, result: "JobStatus", errors: []int{404}},
	"POST /api/v1/jobs/{name}/start": {summary: "Start a job that is not running.", ok: 200, result: "JobStatus", errors: []int{404, 409}},
	"GET /api/v1/jobs/{name}/logs": {summary: "The job's recent log records (a bounded ring), oldest first; with follow, a stream of them. A served job's standard output (sink.stdout) is in it, one record a line with attrs.stream stdout.", ok: 200, result: "LogList",
		query: []param{{"tail", "integer", "at most this many of the newest records (default 100; 0: all kept)"}, {"since", "integer", "only records with a sequence number above this"},
			{"follow", "boolean", "true: stream the records as NDJSON (application/x-ndjson, one record a line), then each new one as it arrives, until the job is deleted or the client goes"}},
		errors: []int{400, 404}},
	"GET /api/v1/jobs/{name}/definition": {summary: "The job file as submitted, secrets masked.", ok: 200, result: "Object", errors: []int{404}},
	"GET /api/v1/jobs/{name}/ws":         {summary: "WebSocket: the job's status (StatusMessage) every interval and at every state change.", ws: true, errors: []int{404}},
	"GET /api/v1/ws":                     {summary: "WebSocket: every job's status (StatusMessage type jobs) every interval, and a job's (type status) at each state change.", ws: true},
	"POST /api/v1/validate":              {summary: "Validate a job file without registering it.", body: true, ok: 200, result: "Object", query: []param{{"filename", "string", "the name the file goes by in error positions"}, {"lint", "boolean", "true: answer an invalid file with 200, valid false and its errors (an editor validating as its user types)"}}, errors: []int{400, 413}},
	"POST /api/v1/login": {summary: "With a token: check it (JSON {\"token\": …}, a form field token, or Authorization: Bearer) and set the session cookie mdp_session (HttpOnly, SameSite=Strict, 12 h) that browsers send instead of the header; needs no other credentials.",
		ok: 200, result: "Object", errors: []int{400}},
	"POST /api/v1/logout":    {summary: "With a token: clear the session cookie.", ok: 200, result: "Object"},
	"GET /api/v1/components": {summary: "Every component type and its params (what mdp components --json prints).", ok: 200, result: "Object"},
}

// openAPI serves the OpenAPI 3.1 document of the routes this handler has.
func (h *Handler) openAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.OpenAPI())
}

// OpenAPI returns the OpenAPI 3.1 document of the routes this handler
// serves.
func (h *Handler) OpenAPI() map[string]any {
	paths := obj{}
	for _, pattern := range h.paths {
		o, ok := operations[pattern]
		if !ok {
			continue // TestOpenAPIMatchesRoutes fails on this
		}
		method, path, _ := strings.Cut(pattern, " ")
		item, _ := paths[path].(obj)
		if item == nil {
			item = obj{}
			paths[path] = item
		}
		item[strings.ToLower(method)] = o.doc(path)
	}
	doc := obj{
		"openapi": "3.1.0",
		"info": obj{"title": "mdp job server API", "version": "1",
			"description": "Runs mdp jobs: submit job files, start, stop, replace, delete, watch their status live. With a token every route but /healthz and /readyz needs Authorization: Bearer TOKEN."},
		"paths": paths,
		"components": obj{
			"securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer"}},
			"schemas":         schemas(),
		},
	}
	if h.opts.Token != "" {
		doc["security"] = []any{obj{"bearer": []any{}}}
	}
	return doc
}

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func (o op) doc(path string) obj {
	d := obj{"summary": o.summary, "operationId": strings.NewReplacer("/api/v1/", "", "/", "_", "{", "", "}", "", ".", "_").Replace(path)}
	var params []any
	if strings.Contains(path, "{name}") {
		params = append(params, obj{"name": "name", "in": "path", "required": true, "schema": obj{"type": "string"}, "description": "the job's name"})
	}
	if strings.Contains(path, "{port}") {
		params = append(params, obj{"name": "port", "in": "path", "required": true, "schema": obj{"type": "string"}, "description": "an output port: node (its main output) or node.port"})
	}
	for _, p := range o.query {
		params = append(params, obj{"name": p.name, "in": "query", "schema": obj{"type": p.typ}, "description": p.desc})
	}
	if len(params) > 0 {
		d["parameters"] = params
	}
	if o.body {
		d["requestBody"] = obj{"required": true, "description": "a job file, at most 1 MiB", "content": obj{
			"application/yaml": obj{"schema": obj{"type": "string"}},
			"application/json": obj{"schema": obj{"type": "object"}},
		}}
	}
	resp := obj{}
	switch {
	case o.ws && o.result != "":
		resp["101"] = obj{"description": "Switching protocols: a WebSocket of " + o.result + " JSON text messages.",
			"content": obj{"application/json": obj{"schema": ref(o.result)}}}
	case o.ws:
		resp["101"] = obj{"description": "Switching protocols: a WebSocket of StatusMessage JSON text messages; a client that falls behind is closed with code 1013.",
			"content": obj{"application/json": obj{"schema": ref("StatusMessage")}}}
	case o.result == "text":
		resp["200"] = obj{"description": "OK", "content": obj{"text/plain": obj{"schema": obj{"type": "string"}}}}
	default:
		resp[strconv.Itoa(o.ok)] = obj{"description": "OK", "content": obj{"application/json": obj{"schema": ref(o.result)}}}
	}
	for _, code := range append(o.errors, 401) {
		resp[strconv.Itoa(code)] = obj{"description": http.StatusText(code), "content": obj{"application/json": obj{"schema": ref("Error")}}}
	}
	d["responses"] = resp
	return d
}

func schemas() obj {
	str := obj{"type": "string"}
	num := obj{"type": "number"}
	integer := obj{"type": "integer"}
	out := obj{
		"Object": obj{"type": "object"},
		"Error": obj{"type": "object", "required": []string{"error"}, "properties": obj{
			"error": str,
			"errors": obj{"type": "array", "description": "every problem of an invalid job file", "items": obj{"type": "object", "properties": obj{
				"file": str, "line": integer, "column": integer, "path": str, "message": str}}},
		}},
		"JobStatus": obj{"type": "object", "properties": obj{
			"name": str, "mode": str, "desired": obj{"enum": []string{"running", "stopped"}},
			"state":   obj{"enum": []string{"created", "starting", "running", "stopping", "stopped", "failed", "backoff"}},
			"restart": obj{"enum": []string{"always", "on-failure", "never"}}, "restarts": integer,
			"next_restart_at": str, "last_error": str, "created_at": str, "started_at": str, "stopped_at": str,
			"uptime_seconds": num, "fingerprint": str, "events_in": integer, "events_out": integer,
			"events_per_second": num, "watermark_lag_seconds": num, "errors": integer, "feedback_level": str, "health": str, "observed_at": str,
			"runtime": obj{"type": "object", "description": "the run's status: nodes (events, batches, drops and errors by reason, watermark, queue depth, backpressure), edges, feedback"},
		}},
		"JobList": obj{"type": "array", "items": ref("JobStatus")},
		"LogList": obj{"type": "array", "items": obj{"type": "object", "properties": obj{
			"seq": integer, "time": str, "level": str, "msg": str, "attrs": obj{"type": "object"}}}},
		"StatusMessage": obj{"type": "object", "properties": obj{
			"type": obj{"enum": []string{"status", "jobs", "deleted"}}, "time": str,
			"job": ref("JobStatus"), "jobs": ref("JobList"), "name": str}},
	}
	for k, v := range extraSchemas {
		out[k] = v
	}
	return out
}

// extraSchemas are schemas the routes of other files add.
var extraSchemas = obj{}
