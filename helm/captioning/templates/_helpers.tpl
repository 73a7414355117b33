{{/* Names, labels, images and the values derived from the services' settings. */}}

{{- define "captioning.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "captioning.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one component's objects: (dict "context" $ "component" "caption") */}}
{{- define "captioning.componentName" -}}
{{- printf "%s-%s" (include "captioning.fullname" .context | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "captioning.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object: (dict "context" $ "component" "caption"); component may be empty. */}}
{{- define "captioning.labels" -}}
helm.sh/chart: {{ include "captioning.chart" .context }}
{{ include "captioning.selectorLabels" . }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: captioning
{{- with .context.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "captioning.selectorLabels" -}}
app.kubernetes.io/name: {{ include "captioning.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/* metadata.annotations of every object (commonAnnotations plus "extra"), nothing when there are none:
(dict "context" $ "extra" (dict ...)); place it at the indentation of metadata's keys. */}}
{{- define "captioning.annotations" -}}
{{- $annotations := merge (dict) (.extra | default (dict)) .context.Values.commonAnnotations -}}
{{- if $annotations -}}
annotations:
  {{- toYaml $annotations | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* An image reference from a uniform image block: (dict "image" .Values.image "context" $) */}}
{{- define "captioning.image" -}}
{{- $registry := .context.Values.global.imageRegistry | default .image.registry -}}
{{- $repository := .image.repository -}}
{{- if $registry -}}
{{- $repository = printf "%s/%s" $registry .image.repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.image.tag | default .context.Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/* The pods' imagePullSecrets (global.imagePullSecrets); nothing when there are none. */}}
{{- define "captioning.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets -}}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end -}}
{{- end -}}

{{- define "captioning.secretName" -}}
{{- .Values.auth.existingSecret | default (include "captioning.fullname" .) -}}
{{- end -}}

{{/* A settings value as the environment carries it: whole numbers without an exponent. */}}
{{- define "captioning.envValue" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) -}}
{{- printf "%d" (int64 .) -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/* The consumer group of a stage: (dict "context" $ "component" "caption") */}}
{{- define "captioning.groupId" -}}
{{- (index .context.Values .component).config.groupId | default .component -}}
{{- end -}}

{{/* Partitions of a topic: (dict "context" $ "topic" "images.uploaded") */}}
{{- define "captioning.partitions" -}}
{{- $topics := .context.Values.kafka.topics -}}
{{- index $topics.partitionsByTopic .topic | default $topics.partitions | int -}}
{{- end -}}

{{/* The input topics of each stage (libs/captioning_common/kafka/topics.toml); the first one bounds its replicas. */}}
{{- define "captioning.inputTopics" -}}
{{- $inputs := dict "ingest" (list "images.submitted") "caption" (list "images.uploaded") "moderation" (list "captions.generated" "moderation.decisions") "indexing" (list "captions.moderated") -}}
{{- index $inputs . | toJson -}}
{{- end -}}

{{/* terminationGracePeriodSeconds, longer than a batch in flight at SIGTERM: (dict "context" $ "component" "caption").
The console has no batch: it cuts its event streams after 3 s (STREAMS_DRAIN_S of services/console/__main__.py)
and then waits at most 10 s for its topic reader to stop. */}}
{{- define "captioning.terminationGrace" -}}
{{- $values := .context.Values -}}
{{- $seconds := 0 -}}
{{- if eq .component "console" -}}
{{- $seconds = add 3 10 $values.shutdown.marginSeconds -}}
{{- else -}}
{{- $config := (index $values .component).config -}}
{{- $seconds = add (divf $config.batchWaitMs 1000 | ceil) (divf $values.kafka.deliveryTimeoutMs 1000 | ceil) $values.shutdown.objectStoreCallSeconds $values.shutdown.marginSeconds -}}
{{- end -}}
{{- if eq .component "caption" -}}
{{- $seconds = add $seconds ($values.triton.config.requestTimeoutS | ceil) -}}
{{- end -}}
{{- if has .component (list "ingest" "indexing" "console") -}}
{{- $seconds = add $seconds $values.shutdown.preStopSleepSeconds -}}
{{- end -}}
{{- $seconds | int -}}
{{- end -}}

{{/* The services of the image, as a JSON list: the four stages, and the web console when console.enabled. */}}
{{- define "captioning.services" -}}
{{- $services := list "ingest" "caption" "moderation" "indexing" -}}
{{- if .Values.console.enabled -}}
{{- $services = append $services "console" -}}
{{- end -}}
{{- $services | toJson -}}
{{- end -}}

{{/* HPA behaviour shared by the HPAs and KEDA's: against rebalance storms. */}}
{{- define "captioning.autoscalingBehavior" -}}
{{- $behavior := .Values.autoscalingBehavior -}}
scaleUp:
  stabilizationWindowSeconds: {{ $behavior.scaleUp.stabilizationWindowSeconds }}
  selectPolicy: Max
  policies:
    - type: Pods
      value: {{ $behavior.scaleUp.podsPerMinute }}
      periodSeconds: 60
scaleDown:
  stabilizationWindowSeconds: {{ $behavior.scaleDown.stabilizationWindowSeconds }}
  selectPolicy: Min
  policies:
    - type: Pods
      value: {{ $behavior.scaleDown.podsPerPeriod }}
      periodSeconds: {{ $behavior.scaleDown.periodSeconds }}
{{- end -}}

{{/* Ports of "host:port,host:port" (Kafka) as a de-duplicated list. */}}
{{- define "captioning.kafkaPorts" -}}
{{- $ports := list -}}
{{- range splitList "," .Values.kafka.bootstrapServers -}}
{{- $ports = append $ports (regexFind "[0-9]+$" (trim .) | int) -}}
{{- end -}}
{{- .Values.networkPolicy.kafka.ports | default ($ports | uniq) | toJson -}}
{{- end -}}

{{/* The port of the S3 endpoint URL (443 or 80 when the URL has none). */}}
{{- define "captioning.s3Ports" -}}
{{- $url := urlParse .Values.s3.endpointUrl -}}
{{- $port := regexFind ":[0-9]+$" $url.host | trimPrefix ":" -}}
{{- if not $port -}}
{{- $port = ternary "443" "80" (eq $url.scheme "https") -}}
{{- end -}}
{{- .Values.networkPolicy.s3.ports | default (list ($port | int)) | toJson -}}
{{- end -}}

{{/* Secret variables a component receives: (dict "context" $ "component" "ingest") */}}
{{- define "captioning.secretEnv" -}}
{{- $byComponent := dict
  "ingest" (list "CAPTIONING_API_KEYS" "CAPTIONING_REVIEWER_KEYS" "CAPTIONING_REVIEW_SIGNING_KEY")
  "moderation" (list "CAPTIONING_REVIEW_SIGNING_KEY")
  "indexing" (list "CAPTIONING_API_KEYS")
  "console" (list "CAPTIONING_API_KEYS" "CAPTIONING_REVIEWER_KEYS" "CAPTIONING_OPERATOR_KEYS")
  "caption" (list)
  "topics" (list)
-}}
{{- $names := index $byComponent .component -}}
{{- if ne .component "topics" -}}
{{- $names = concat $names (list "CAPTIONING_S3_ACCESS_KEY_ID" "CAPTIONING_S3_SECRET_ACCESS_KEY") -}}
{{- end -}}
{{- if .context.Values.kafka.saslMechanism -}}
{{- $names = concat $names (list "CAPTIONING_KAFKA_SASL_USERNAME" "CAPTIONING_KAFKA_SASL_PASSWORD") -}}
{{- end -}}
{{- $secret := include "captioning.secretName" .context -}}
{{- if and (eq .component "topics") (not .context.Values.auth.existingSecret) -}}
{{- $secret = printf "%s-topics" (include "captioning.fullname" .context) -}}
{{- end -}}
{{- range $names }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
      {{- if not (has . (list "CAPTIONING_API_KEYS" "CAPTIONING_S3_ACCESS_KEY_ID" "CAPTIONING_S3_SECRET_ACCESS_KEY")) }}
      optional: true
      {{- end }}
{{- end }}
{{- end -}}

{{/* The KEDA SASL mode of a librdkafka sasl.mechanism. */}}
{{- define "captioning.kedaSasl" -}}
{{- $modes := dict "PLAIN" "plaintext" "SCRAM-SHA-256" "scram_sha256" "SCRAM-SHA-512" "scram_sha512" -}}
{{- index $modes .Values.kafka.saslMechanism -}}
{{- end -}}

{{/* name, namespace, labels and annotations of an object:
(dict "context" $ "component" "caption" "name" "..." "annotations" (dict ...)); name defaults to the component's. */}}
{{- define "captioning.metadata" -}}
name: {{ .name | default (include "captioning.componentName" .) }}
namespace: {{ .context.Release.Namespace | quote }}
labels:
  {{- include "captioning.labels" . | nindent 2 }}
{{- with include "captioning.annotations" (dict "context" .context "extra" .annotations) }}
{{ . }}
{{- end }}
{{- end -}}
