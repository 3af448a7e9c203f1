{{- define "mdp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mdp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mdp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mdp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mdp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mdp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "mdp.tokenSecret" -}}
{{- if .Values.apiToken.existingSecret }}{{ .Values.apiToken.existingSecret }}{{ else }}{{ include "mdp.fullname" . }}-token{{ end }}
{{- end }}

{{- define "mdp.tokenKey" -}}
{{- if .Values.apiToken.existingSecret }}{{ .Values.apiToken.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}

{{- define "mdp.jobsConfigMap" -}}
{{- if .Values.jobsConfigMap }}{{ .Values.jobsConfigMap }}{{ else }}{{ include "mdp.fullname" . }}-jobs{{ end }}
{{- end }}

{{- /* The workers' own name label, so neither the StatefulSet's selector nor
the Service's selects a worker pod. */ -}}
{{- define "mdp.workerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "mdp.name" . }}-worker
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end }}
