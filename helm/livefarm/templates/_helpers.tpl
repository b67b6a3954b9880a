{{/* Names */}}
{{- define "livefarm.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* "livefarm.name" (dict "root" $ "component" "ingest") */}}
{{- define "livefarm.name" -}}
{{- printf "%s-%s" (include "livefarm.fullname" .root) .component -}}
{{- end -}}

{{- define "livefarm.selectorLabels" -}}
app.kubernetes.io/name: livefarm
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "livefarm.labels" -}}
{{ include "livefarm.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: livefarm
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "livefarm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "livefarm.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "livefarm.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.repository .component (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{/* Shared endpoints */}}
{{- define "livefarm.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s:6379" (include "livefarm.name" (dict "root" . "component" "redis")) -}}
{{- else if .Values.redis.url -}}
{{- .Values.redis.url -}}
{{- else if not .Values.redis.urlSecret.name -}}
{{- fail "redis.enabled is false: set redis.url or redis.urlSecret.name" -}}
{{- end -}}
{{- end -}}

{{/* The Secret (name, key) holding the control-plane database URL: the user's, or the in-chart
evaluation PostgreSQL's. */}}
{{- define "livefarm.databaseSecretName" -}}
{{- if .Values.api.database.existingSecret -}}
{{- .Values.api.database.existingSecret -}}
{{- else if .Values.postgresql.enabled -}}
{{- include "livefarm.name" (dict "root" . "component" "postgresql") -}}
{{- else -}}
{{- fail "the api needs a database: set api.database.existingSecret (a Secret with the postgres:// URL) or postgresql.enabled=true (evaluation only)" -}}
{{- end -}}
{{- end -}}

{{- define "livefarm.databaseSecretKey" -}}
{{- if .Values.api.database.existingSecret -}}
{{- .Values.api.database.secretKey -}}
{{- else -}}
url
{{- end -}}
{{- end -}}

{{- define "livefarm.storageUrl" -}}
{{- $s := .Values.storage -}}
{{- if $s.url -}}
{{- $s.url -}}
{{- else if $s.s3.bucket -}}
{{- $query := list -}}
{{- with $s.s3.region }}{{ $query = append $query (printf "region=%s" .) }}{{ end -}}
{{- with $s.s3.endpoint }}{{ $query = append $query (printf "endpoint=%s" (urlquery .)) }}{{ if hasPrefix "http://" . }}{{ $query = append $query "allow_http=true" }}{{ end }}{{ end -}}
{{- printf "s3://%s%s" $s.s3.bucket (ternary (printf "/%s" (trimAll "/" $s.s3.prefix)) "" (ne $s.s3.prefix "")) -}}
{{- if $query }}?{{ join "&" $query }}{{ end -}}
{{- else -}}
file:///var/lib/livefarm/objects
{{- end -}}
{{- end -}}

{{/* Whether segments live on the shared volume (no object store URL). */}}
{{- define "livefarm.sharedVolume" -}}
{{- if hasPrefix "file://" (include "livefarm.storageUrl" .) }}true{{ end -}}
{{- end -}}

{{- define "livefarm.telemetry" -}}
{{- $t := dict "log_format" .Values.telemetry.logFormat "log_filter" .Values.telemetry.logFilter "service_name" (printf "livefarm-%s" .component) -}}
{{- with .Values.telemetry.otlpEndpoint }}{{ $_ := set $t "otlp_endpoint" . }}{{ end -}}
{{- toJson $t -}}
{{- end -}}

{{/*
The service's config file: the chart's keys, then the user's `config` map over them.
"livefarm.configMap" (dict "root" $ "component" "ingest" "config" $computed "user" .Values.ingest.config)
*/}}
{{- define "livefarm.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "livefarm.name" . }}
  labels:
    {{- include "livefarm.labels" . | nindent 4 }}
data:
  config.json: |
    {{- mustMergeOverwrite .config (deepCopy .user) | toPrettyJson | nindent 4 }}
{{- end -}}

{{/* Environment every Livefarm container gets: the config path, secret URLs (Redis: `redisKeys`;
the database: `databaseKeys`, config keys set from the Secret), S3 credentials. */}}
{{- define "livefarm.env" -}}
- name: LIVEFARM_CONFIG
  value: /etc/livefarm/config.json
{{- if and (not .root.Values.redis.enabled) .root.Values.redis.urlSecret.name }}
{{- range .redisKeys }}
- name: {{ printf "LIVEFARM_%s" (. | upper | replace "." "__") }}
  valueFrom:
    secretKeyRef:
      name: {{ $.root.Values.redis.urlSecret.name }}
      key: {{ $.root.Values.redis.urlSecret.key }}
{{- end }}
{{- end }}
{{- range .databaseKeys }}
- name: {{ printf "LIVEFARM_%s" (. | upper | replace "." "__") }}
  valueFrom:
    secretKeyRef:
      name: {{ include "livefarm.databaseSecretName" $.root }}
      key: {{ include "livefarm.databaseSecretKey" $.root }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "livefarm.envFrom" -}}
{{- if and .Values.storage.s3.existingSecret (not (include "livefarm.sharedVolume" .)) }}
envFrom:
  - secretRef:
      name: {{ .Values.storage.s3.existingSecret }}
{{- end }}
{{- end -}}

{{- define "livefarm.podMeta" -}}
labels:
  {{- include "livefarm.labels" . | nindent 2 }}
annotations:
  # A config change rolls the pods.
  checksum/config: {{ .checksum }}
  {{- with .root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* Scheduling fields of a pod spec from a service's values. */}}
{{- define "livefarm.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "livefarm.probes" -}}
startupProbe:
  httpGet: { path: /livez, port: admin }
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: { path: /livez, port: admin }
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet: { path: /readyz, port: admin }
  periodSeconds: 5
  failureThreshold: 2
{{- end -}}

{{- define "livefarm.securityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: { drop: [ALL] }
{{- end -}}

{{- define "livefarm.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile: { type: RuntimeDefault }
{{- end -}}

{{/* Volumes: config, /tmp, and the shared segment volume when storage is a directory. */}}
{{- define "livefarm.volumes" -}}
- name: config
  configMap:
    name: {{ include "livefarm.name" . }}
- name: tmp
  emptyDir: {}
{{- if and .objects (include "livefarm.sharedVolume" .root) }}
- name: objects
  persistentVolumeClaim:
    claimName: {{ default (include "livefarm.name" (dict "root" .root "component" "objects")) .root.Values.storage.persistence.existingClaim }}
{{- end }}
{{- end -}}

{{- define "livefarm.volumeMounts" -}}
- name: config
  mountPath: /etc/livefarm
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if and .objects (include "livefarm.sharedVolume" .root) }}
- name: objects
  mountPath: /var/lib/livefarm/objects
{{- end }}
{{- end -}}

{{- define "livefarm.pdb" -}}
{{- if and .values.podDisruptionBudget.enabled (gt (int .replicas) 1) }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "livefarm.name" . }}
  labels:
    {{- include "livefarm.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "livefarm.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "livefarm.serviceMonitor" -}}
{{- if .root.Values.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "livefarm.name" . }}
  labels:
    {{- include "livefarm.labels" . | nindent 4 }}
    {{- with .root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "livefarm.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: admin
      path: /metrics
      interval: {{ .root.Values.serviceMonitor.interval }}
{{- end }}
{{- end -}}

{{/* Sessions the farm should hold: held now plus waiting for a worker. */}}
{{- define "livefarm.transcoderDemandQuery" -}}
{{- $sel := printf "namespace=\"%s\",service=\"%s\"" .Release.Namespace (include "livefarm.name" (dict "root" . "component" "transcoder")) -}}
sum(livefarm_transcoder_sessions{ {{- $sel -}} }) + max(livefarm_transcoder_unclaimed_streams{ {{- $sel -}} }) or vector(0)
{{- end -}}

{{/*
The transcoder Deployment's replicas. Without autoscaling: `transcoder.replicas`. With it, the
autoscaler owns the count, but the template still renders one: without `replicas` the API
server resets a running Deployment to 1 (a farm of 5 dropped to 1 until the autoscaler's next
sync). So it renders what the live Deployment runs now (at least minReplicas, at most
maxReplicas) and, on a fresh install, minReplicas. Equal to the live value, the field never
conflicts with the autoscaler's writes under server-side apply. `helm template` sees no cluster
(lookup is empty) and renders minReplicas.
*/}}
{{- define "livefarm.transcoderReplicas" -}}
{{- $v := .Values.transcoder -}}
{{- if not $v.autoscaling.enabled -}}
{{- $v.replicas -}}
{{- else -}}
{{- $a := $v.autoscaling -}}
{{- $live := lookup "apps/v1" "Deployment" .Release.Namespace (include "livefarm.name" (dict "root" . "component" "transcoder")) -}}
{{- $n := int $a.minReplicas -}}
{{- if $live -}}
{{- $n = max $n (int (default 1 $live.spec.replicas)) | min (int $a.maxReplicas) -}}
{{- end -}}
{{- $n -}}
{{- end -}}
{{- end -}}

{{/*
Refuses a change to a StatefulSet's volumeClaimTemplates, which the API server forbids (the
upgrade would fail half-way and leave the release `failed`). Compares the rendered claim
(`enabled`, `size`, `storageClassName`) with the live StatefulSet's; `helm template` sees no
cluster and checks nothing. "livefarm.claimUnchanged" (dict "root" $ "component" "redis" "values" "redis.persistence" "enabled" true "size" "8Gi" "storageClassName" "")
*/}}
{{- define "livefarm.claimUnchanged" -}}
{{- $name := include "livefarm.name" . -}}
{{- $live := lookup "apps/v1" "StatefulSet" .root.Release.Namespace $name -}}
{{- if $live -}}
{{- $claims := default (list) $live.spec.volumeClaimTemplates -}}
{{- $was := "no volume" -}}
{{- range $claims -}}
{{- if eq .metadata.name "data" -}}
{{- $was = printf "%s%s" .spec.resources.requests.storage (ternary (printf " of class %s" (default "" .spec.storageClassName)) "" (ne (default "" .spec.storageClassName) "")) -}}
{{- end -}}
{{- end -}}
{{- $want := "no volume" -}}
{{- if .enabled -}}
{{- $want = printf "%s%s" .size (ternary (printf " of class %s" .storageClassName) "" (ne .storageClassName "")) -}}
{{- end -}}
{{- if ne $was $want -}}
{{- fail (printf "%s: StatefulSet %s has %s; this upgrade asks for %s. Kubernetes cannot change a StatefulSet's volumeClaimTemplates, so the upgrade would fail half-way. Keep %s as it is, or resize by hand first: see \"Resizing a volume\" in docs/OPERATIONS.md" .values $name $was $want .values) -}}
{{- end -}}
{{- end -}}
{{- end -}}
