{{- define "owlscope.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "owlscope.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "owlscope.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "owlscope.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "owlscope.secretName" -}}
{{ .Values.secrets.existingSecret | default (printf "%s-secrets" (include "owlscope.fullname" .)) }}
{{- end -}}

{{/* The preset's value for a role's key unless the role sets it. */}}
{{- define "owlscope.preset" -}}
{{- $preset := index .root.Values.presets .root.Values.resourcesPreset | required (printf "resourcesPreset must be one of: %s" (keys .root.Values.presets | sortAlpha | join ", ")) -}}
{{- $role := index .root.Values .role -}}
{{- $value := index $role .key -}}
{{- if $value }}{{ toYaml $value }}{{ else }}{{ toYaml (index (index $preset .role) .key) }}{{ end -}}
{{- end -}}

{{/*
Every secret is required before anything renders. Lists each missing value with how to make it.
*/}}
{{- define "owlscope.validate" -}}
{{- $missing := list -}}
{{- if not .Values.secrets.existingSecret -}}
{{- if not .Values.secrets.salt }}{{ $missing = append $missing "secrets.salt (SALT): openssl rand -base64 32" }}{{ end -}}
{{- if not .Values.secrets.sessionSecret }}{{ $missing = append $missing "secrets.sessionSecret (SESSION_SECRET): openssl rand -base64 32" }}{{ end -}}
{{- if not .Values.secrets.encryptionKey }}{{ $missing = append $missing "secrets.encryptionKey (ENCRYPTION_KEY): openssl rand -hex 32" }}{{ end -}}
{{- if and .Values.postgresql.deploy (not .Values.postgresql.auth.password) }}{{ $missing = append $missing "postgresql.auth.password (DATABASE_URL)" }}{{ end -}}
{{- if and (not .Values.postgresql.deploy) (not .Values.postgresql.external.password) }}{{ $missing = append $missing "postgresql.external.password (DATABASE_URL)" }}{{ end -}}
{{- if and (not .Values.postgresql.deploy) (not .Values.postgresql.external.host) }}{{ $missing = append $missing "postgresql.external.host (DATABASE_URL)" }}{{ end -}}
{{- if and .Values.clickhouse.deploy (not .Values.clickhouse.auth.password) }}{{ $missing = append $missing "clickhouse.auth.password (CLICKHOUSE_PASSWORD)" }}{{ end -}}
{{- if and (not .Values.clickhouse.deploy) (not .Values.clickhouse.external.url) }}{{ $missing = append $missing "clickhouse.external.url (CLICKHOUSE_URL)" }}{{ end -}}
{{- if and .Values.redis.deploy (not .Values.redis.auth.password) }}{{ $missing = append $missing "redis.auth.password (REDIS_URL)" }}{{ end -}}
{{- if and (not .Values.redis.deploy) (not .Values.redis.external.url) }}{{ $missing = append $missing "redis.external.url (REDIS_URL)" }}{{ end -}}
{{- if and (not .Values.s3.useInstanceCredentials) (not .Values.s3.accessKeyId) }}{{ $missing = append $missing "s3.accessKeyId (S3_ACCESS_KEY_ID)" }}{{ end -}}
{{- if and (not .Values.s3.useInstanceCredentials) (not .Values.s3.secretAccessKey) }}{{ $missing = append $missing "s3.secretAccessKey (S3_SECRET_ACCESS_KEY)" }}{{ end -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "\n\nowlscope: these required values are missing:\n  - %s\n\nSet them with --set or a values file; nothing was installed.\n" (join "\n  - " $missing)) -}}
{{- end -}}
{{- end -}}

{{- define "owlscope.databaseUrl" -}}
{{- if .Values.postgresql.deploy -}}
postgresql://{{ .Values.postgresql.auth.username }}:{{ .Values.postgresql.auth.password | urlquery }}@{{ .Release.Name }}-postgresql:5432/{{ .Values.postgresql.auth.database }}
{{- else -}}
{{- $e := .Values.postgresql.external -}}
postgresql://{{ $e.username }}:{{ $e.password | urlquery }}@{{ $e.host }}:{{ $e.port }}/{{ $e.database }}
{{- end -}}
{{- end -}}

{{- define "owlscope.redisUrl" -}}
{{- if .Values.redis.deploy -}}
redis://:{{ .Values.redis.auth.password | urlquery }}@{{ .Release.Name }}-redis-master:6379/0
{{- else -}}
{{ .Values.redis.external.url }}
{{- end -}}
{{- end -}}

{{/* Pod fields shared by web, worker and the migration job. */}}
{{- define "owlscope.podCommon" -}}
serviceAccountName: {{ .Values.serviceAccount.name | default (include "owlscope.fullname" .) }}
securityContext: {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - {name: data, emptyDir: {}}
  - {name: tmp, emptyDir: {}}
{{- end -}}

{{- define "owlscope.containerCommon" -}}
image: {{ include "owlscope.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext: {{- toYaml .Values.securityContext | nindent 2 }}
envFrom:
  - configMapRef: {name: {{ include "owlscope.fullname" . }}-config}
  - secretRef: {name: {{ include "owlscope.secretName" . }}}
volumeMounts:
  - {name: data, mountPath: /data}
  - {name: tmp, mountPath: /tmp}
{{- end -}}
