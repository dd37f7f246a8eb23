{{/*
The chart's name, and the release's full name (both at most 63 characters).
*/}}
{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portcullis.fullname" -}}
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

{{- define "portcullis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "portcullis.labels" -}}
helm.sh/chart: {{ include "portcullis.chart" . }}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "portcullis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portcullis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "portcullis.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Where the secret files are mounted, and the Secret an entry of .Values.secrets
comes from.
*/}}
{{- define "portcullis.secretDir" -}}
/run/secrets/portcullis
{{- end }}

{{- define "portcullis.secretName" -}}
{{- $root := index . 0 }}{{- $entry := index . 1 }}
{{- $entry.existingSecret | default $root.Values.secrets.existingSecret | default (include "portcullis.fullname" $root) }}
{{- end }}

{{/*
Whether the Redis password and the admin token are configured.
*/}}
{{- define "portcullis.redisPassword" -}}
{{- if and (eq (dig "session" "store" "cookie" .Values.config) "redis") .Values.secrets.redisPassword.key }}true{{ end }}
{{- end }}

{{- define "portcullis.adminToken" -}}
{{- if .Values.secrets.adminToken.key }}true{{ end }}
{{- end }}

{{/*
The Portcullis configuration: .Values.config with server.listen and the
*_file paths of the mounted secrets filled in.
*/}}
{{- define "portcullis.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $dir := include "portcullis.secretDir" . }}
{{- $server := get $cfg "server" | default dict }}
{{- $_ := set $server "listen" (printf ":%v" .Values.containerPort) }}
{{- $_ = set $cfg "server" $server }}
{{- range $p := $cfg.providers }}
{{- $ref := get ($.Values.secrets.clientSecrets | default dict) (toString $p.id) }}
{{- if and $ref $ref.key }}
{{- $_ = set $p "client_secret_file" (printf "%s/client-secret-%s" $dir $p.id) }}
{{- else if not (or $p.client_secret $p.client_secret_file) }}
{{- fail (printf "provider %q has no client secret: add secrets.clientSecrets.%s.key (the key of an existing Secret)" (toString $p.id) (toString $p.id)) }}
{{- end }}
{{- end }}
{{- $session := get $cfg "session" | default dict }}
{{- $_ = set $cfg "session" $session }}
{{- with .Values.secrets.cookieSecrets.keys }}
{{- $files := list }}
{{- range $i, $key := . }}
{{- $files = append $files (printf "%s/cookie-secret-%d" $dir $i) }}
{{- end }}
{{- $cookie := get $session "cookie" | default dict }}
{{- $_ = set $cookie "secrets_file" $files }}
{{- $_ = set $session "cookie" $cookie }}
{{- end }}
{{- if include "portcullis.redisPassword" . }}
{{- $redis := get $session "redis" | default dict }}
{{- $_ = set $redis "password_file" (printf "%s/redis-password" $dir) }}
{{- $_ = set $session "redis" $redis }}
{{- end }}
{{- if .Values.metrics.enabled }}
{{- $metrics := get $cfg "metrics" | default dict }}
{{- $_ = set $metrics "listen" (printf ":%v" .Values.metrics.port) }}
{{- $_ = set $cfg "metrics" $metrics }}
{{- end }}
{{- if include "portcullis.adminToken" . }}
{{- $admin := get $cfg "admin" | default dict }}
{{- if not $admin.listen }}
{{- $_ = set $admin "listen" "127.0.0.1:4181" }}
{{- end }}
{{- $_ = set $admin "token_file" (printf "%s/admin-token" $dir) }}
{{- $_ = set $cfg "admin" $admin }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
The public URL and endpoint prefix, for NOTES.txt.
*/}}
{{- define "portcullis.endpoints" -}}
{{- trimSuffix "/" (dig "server" "public_url" "" .Values.config) }}{{ dig "server" "prefix" "/oauth2" .Values.config | default "/oauth2" }}
{{- end }}
