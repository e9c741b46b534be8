"""Response bodies of the public API, named as in Langfuse's OpenAPI contract.

Every `/api/public` route declares one of these as its response model, so the served OpenAPI
describes each body. Routes pass `response_model_exclude_unset=True` (see `typed`): a field the
route did not produce (a field group not asked for) stays absent instead of appearing as null.
Fields are typed as the contract types them; extra fields pass through (`extra="allow"`), as
Langfuse's own responses carry a few beyond its spec.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


def typed(model: type[BaseModel] | None, **kwargs: Any) -> dict[str, Any]:
    """Route decorator arguments for a response model (absent fields stay absent)."""
    return {"response_model": model, "response_model_exclude_unset": True, **kwargs}


# ---- shared ---------------------------------------------------------------------------------
class PageMeta(Body):
    page: int
    limit: int
    totalItems: int
    totalPages: int


class CursorMeta(Body):
    cursor: str | None = None


class Message(Body):
    message: str


class Id(Body):
    id: str


class Deprecation(Body):
    message: str
    replacement: str | None = None
    docsUrl: str | None = None
    sunsetAt: str | None = None


class Deprecated(Body):
    deprecation: Deprecation | None = Field(default=None, alias="_deprecation")


# ---- scores ---------------------------------------------------------------------------------
class ScoreV1(Body):
    id: str
    projectId: str | None = None
    traceId: str | None = None
    name: str
    source: str
    observationId: str | None = None
    timestamp: str
    createdAt: str
    updatedAt: str
    authorUserId: str | None = None
    comment: str | None = None
    metadata: Any = None
    configId: str | None = None
    queueId: str | None = None
    executionTraceId: str | None = None
    environment: str = "default"
    dataType: str
    value: float | None = None
    stringValue: str | None = None


class Score(ScoreV1):
    sessionId: str | None = None
    datasetRunId: str | None = None
    trace: Any = None


class GetScoresResponse(Body):
    data: list[Score]
    meta: PageMeta


class ScoreV3(Body):
    id: str
    projectId: str
    name: str
    source: str
    timestamp: str
    environment: str
    createdAt: str
    updatedAt: str
    dataType: str
    value: Any = None
    comment: str | None = None
    configId: str | None = None
    metadata: dict[str, Any] | None = None
    authorUserId: str | None = None
    queueId: str | None = None
    subject: dict[str, Any] | None = None


class GetScoresV3Meta(Body):
    limit: int
    cursor: str | None = None


class GetScoresV3Response(Body):
    data: list[ScoreV3]
    meta: GetScoresV3Meta


class CreateScoreResponse(Body):
    id: str | None = None
    ids: list[str] | None = None


# ---- observations ---------------------------------------------------------------------------
class Usage(Body):
    input: int | None = None
    output: int | None = None
    total: int | None = None
    unit: str | None = None
    inputCost: float | None = None
    outputCost: float | None = None
    totalCost: float | None = None


class ObservationsView(Body):
    id: str
    traceId: str | None = None
    type: str
    name: str | None = None
    startTime: str
    endTime: str | None = None
    completionStartTime: str | None = None
    model: str | None = None
    modelParameters: Any = None
    input: Any = None
    version: str | None = None
    metadata: Any = None
    output: Any = None
    usage: Usage | None = None
    level: str
    statusMessage: str | None = None
    parentObservationId: str | None = None
    promptId: str | None = None
    usageDetails: dict[str, int] = {}
    costDetails: dict[str, float] = {}
    environment: str | None = None
    promptName: str | None = None
    promptVersion: int | None = None
    modelId: str | None = None
    inputPrice: float | None = None
    outputPrice: float | None = None
    totalPrice: float | None = None
    calculatedInputCost: float | None = None
    calculatedOutputCost: float | None = None
    calculatedTotalCost: float | None = None
    latency: float | None = None
    timeToFirstToken: float | None = None


class ObservationsViews(Deprecated):
    data: list[ObservationsView]
    meta: PageMeta


class ObservationV2(Body):
    """One field group at a time (`fields`): only `core` is always present."""

    id: str
    traceId: str | None = None
    startTime: str
    endTime: str | None = None
    projectId: str
    parentObservationId: str | None = None
    type: str
    isRootObservation: bool | None = None
    name: str | None = None
    level: str | None = None
    statusMessage: str | None = None
    version: str | None = None
    environment: str | None = None
    bookmarked: bool | None = None
    public: bool | None = None
    userId: str | None = None
    sessionId: str | None = None
    completionStartTime: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    input: Any = None
    output: Any = None
    metadata: Any = None
    providedModelName: str | None = None
    internalModelId: str | None = None
    modelParameters: Any = None
    usageDetails: dict[str, int] | None = None
    costDetails: dict[str, float] | None = None
    totalCost: float | None = None
    usagePricingTierName: str | None = None
    promptId: str | None = None
    promptName: str | None = None
    promptVersion: int | None = None
    latency: float | None = None
    timeToFirstToken: float | None = None
    modelId: str | None = None
    inputPrice: str | float | None = None
    outputPrice: str | float | None = None
    totalPrice: str | float | None = None
    traceName: str | None = None
    tags: list[str] | None = None
    release: str | None = None


class ObservationsV2Response(Body):
    data: list[ObservationV2]
    meta: CursorMeta


# ---- traces and sessions --------------------------------------------------------------------
class Trace(Body):
    id: str
    timestamp: str
    name: str | None = None
    input: Any = None
    output: Any = None
    sessionId: str | None = None
    release: str | None = None
    version: str | None = None
    userId: str | None = None
    metadata: Any = None
    tags: list[str] = []
    public: bool = False
    environment: str = "default"
    externalId: str | None = None


class TraceWithDetails(Trace):
    """A trace in a list: observation and score ids."""

    htmlPath: str | None = None
    latency: float | None = None
    totalCost: float | None = None
    observations: list[str] = []
    scores: list[str] = []


class Traces(Body):
    data: list[TraceWithDetails]
    meta: PageMeta


class TraceWithFullDetails(Trace):
    htmlPath: str
    latency: float | None = None
    totalCost: float | None = None
    observations: list[ObservationsView] = []
    scores: list[ScoreV1] = []


class Session(Body):
    id: str
    createdAt: str
    projectId: str
    environment: str = "default"


class PaginatedSessions(Body):
    data: list[Session]
    meta: PageMeta


class SessionWithTraces(Session, Deprecated):
    traces: list[Trace]


# ---- datasets and experiments ---------------------------------------------------------------
class Dataset(Body):
    id: str
    name: str
    description: str | None = None
    metadata: Any = None
    inputSchema: Any = None
    expectedOutputSchema: Any = None
    projectId: str
    createdAt: str
    updatedAt: str


class PaginatedDatasets(Body):
    data: list[Dataset]
    meta: PageMeta


class DatasetItem(Body):
    id: str
    status: str
    input: Any = None
    expectedOutput: Any = None
    metadata: Any = None
    sourceTraceId: str | None = None
    sourceObservationId: str | None = None
    datasetId: str
    datasetName: str
    createdAt: str
    updatedAt: str
    mediaReferences: list[dict[str, Any]] = []


class PaginatedDatasetItems(Body):
    data: list[DatasetItem]
    meta: PageMeta


class DatasetRunItem(Body):
    id: str
    datasetRunId: str
    datasetRunName: str
    datasetItemId: str
    traceId: str
    observationId: str | None = None
    createdAt: str
    updatedAt: str


class PaginatedDatasetRunItems(Deprecated):
    data: list[DatasetRunItem]
    meta: PageMeta


class DatasetRun(Body):
    id: str
    name: str
    description: str | None = None
    metadata: Any = None
    datasetId: str
    datasetName: str
    createdAt: str
    updatedAt: str


class DatasetRunWithItems(DatasetRun, Deprecated):
    datasetRunItems: list[DatasetRunItem]


class PaginatedDatasetRuns(Deprecated):
    data: list[DatasetRun]
    meta: PageMeta


class Experiment(Body):
    id: str
    name: str
    description: str | None = None
    startTime: str
    endTime: str
    itemCount: int
    datasetId: str | None = None
    metadata: dict[str, Any] | None = None
    scores: list[ScoreV3] | None = None


class ExperimentsResponse(Body):
    data: list[Experiment]
    meta: CursorMeta


class ExperimentItem(Body):
    id: str
    traceId: str
    startTime: str
    endTime: str | None = None
    level: str
    environment: str
    experimentId: str
    experimentName: str
    experimentItemId: str
    experimentDatasetId: str | None = None
    experimentItemVersion: str | None = None
    input: Any = None
    output: Any = None
    expectedOutput: Any = None
    metadata: dict[str, Any] | None = None
    experimentItemMetadata: dict[str, Any] | None = None
    experimentMetadata: dict[str, Any] | None = None
    experimentDescription: str | None = None
    scores: list[ScoreV3] | None = None


class ExperimentItemsResponse(Body):
    data: list[ExperimentItem]
    meta: CursorMeta


# ---- prompts --------------------------------------------------------------------------------
class Prompt(Body):
    """A text prompt (`prompt` a string) or a chat prompt (`prompt` a list of messages)."""

    id: str | None = None
    name: str
    version: int
    type: str
    prompt: str | list[dict[str, Any]]
    config: Any = None
    labels: list[str] = []
    tags: list[str] = []
    commitMessage: str | None = None
    resolutionGraph: dict[str, Any] | None = None


class PromptMeta(Body):
    name: str
    type: str
    versions: list[int]
    labels: list[str]
    tags: list[str]
    lastUpdatedAt: str
    lastConfig: Any = None


class PromptMetaListResponse(Body):
    data: list[PromptMeta]
    meta: PageMeta


# ---- project configuration ------------------------------------------------------------------
class ScoreConfig(Body):
    id: str
    name: str
    createdAt: str
    updatedAt: str
    projectId: str
    dataType: str
    isArchived: bool
    minValue: float | None = None
    maxValue: float | None = None
    categories: list[dict[str, Any]] | None = None
    description: str | None = None


class ScoreConfigs(Body):
    data: list[ScoreConfig]
    meta: PageMeta


class Model(Body):
    id: str
    modelName: str
    matchPattern: str
    startDate: str | None = None
    unit: str | None = None
    inputPrice: float | None = None
    outputPrice: float | None = None
    totalPrice: float | None = None
    tokenizerId: str | None = None
    tokenizerConfig: Any = None
    isLangfuseManaged: bool
    createdAt: str | None = None
    prices: dict[str, dict[str, float]] = {}
    pricingTiers: list[dict[str, Any]] = []


class PaginatedModels(Body):
    data: list[Model]
    meta: PageMeta


class Comment(Body):
    id: str
    projectId: str
    createdAt: str
    updatedAt: str
    objectType: str
    objectId: str
    content: str
    authorUserId: str | None = None


class GetCommentsResponse(Body):
    data: list[Comment]
    meta: PageMeta


class LlmConnection(Body):
    id: str
    provider: str
    adapter: str
    displaySecretKey: str
    baseURL: str | None = None
    customModels: list[str] = []
    withDefaultModels: bool = True
    extraHeaderKeys: list[str] = []
    config: dict[str, Any] | None = None
    createdAt: str
    updatedAt: str


class PaginatedLlmConnections(Body):
    data: list[LlmConnection]
    meta: PageMeta


class Project(Body):
    id: str
    name: str
    organization: dict[str, Any] | None = None
    metadata: dict[str, Any] = {}
    retentionDays: int | None = None


class Projects(Body):
    data: list[Project]


class Evaluator(Body):
    """An evaluator or an evaluation rule of the unstable evaluation API (shape per `type`)."""

    id: str
    name: str | None = None
    createdAt: str | None = None
    updatedAt: str | None = None


class Evaluators(Body):
    data: list[Evaluator]
    meta: PageMeta


# ---- health, metrics, ingestion -------------------------------------------------------------
class HealthResponse(Body):
    version: str
    status: str


class MetricsResponse(Deprecated):
    data: list[dict[str, Any]]


class IngestionResponse(Body):
    successes: list[dict[str, Any]]
    errors: list[dict[str, Any]]


class OtelTraceResponse(Body):
    partialSuccess: dict[str, Any] | None = None


class DailyMetrics(Body):
    data: list[dict[str, Any]]
    meta: PageMeta


# ---- privacy (Owlscope's own endpoints) --------------------------------------------------------
class MaskingRule(Body):
    id: str
    kind: str
    target: str
    replacement: str
    position: int
    createdAt: str


class MaskingRules(Body):
    data: list[MaskingRule]


class MaskingPreview(Body):
    masked: str


class ProjectRetention(Body):
    id: str
    retentionDays: int | None = None


class ErasureResult(Body):
    message: str
    deletedTraces: int


# ---- blob storage integrations ----------------------------------------------------------------
class BlobStorageIntegrationResponse(Body):
    id: str
    projectId: str
    type: str
    bucketName: str
    endpoint: str | None
    region: str
    accessKeyId: str | None
    prefix: str
    exportFrequency: str
    enabled: bool
    forcePathStyle: bool
    fileType: str
    exportMode: str
    exportStartDate: str | None
    compressed: bool
    exportSource: str
    exportFieldGroups: list[str] | None
    nextSyncAt: str | None
    lastSyncAt: str | None
    lastError: str | None
    lastErrorAt: str | None
    createdAt: str
    updatedAt: str


class BlobStorageIntegrationsResponse(Body):
    data: list[BlobStorageIntegrationResponse]


class BlobStorageIntegrationStatusResponse(Body):
    id: str
    projectId: str
    syncStatus: str
    enabled: bool
    lastSyncAt: str | None
    nextSyncAt: str | None
    lastError: str | None
    lastErrorAt: str | None


class BlobStorageIntegrationDeletionResponse(Body):
    message: str


# ---- annotation queues -----------------------------------------------------------------------
class AnnotationQueue(Body):
    id: str
    name: str
    description: str | None = None
    scoreConfigIds: list[str]
    createdAt: str
    updatedAt: str


class PaginatedAnnotationQueues(Body):
    data: list[AnnotationQueue]
    meta: PageMeta


class AnnotationQueueItem(Body):
    id: str
    queueId: str
    objectId: str
    objectType: str
    status: str
    completedAt: str | None = None
    createdAt: str
    updatedAt: str


class PaginatedAnnotationQueueItems(Body):
    data: list[AnnotationQueueItem]
    meta: PageMeta


class DeleteAnnotationQueueItemResponse(Body):
    success: bool
    message: str


class CreateAnnotationQueueAssignmentResponse(Body):
    userId: str
    queueId: str
    projectId: str


class DeleteAnnotationQueueAssignmentResponse(Body):
    success: bool


# ---- organization administration (organization API keys) -------------------------------------
class OrganizationProject(Body):
    id: str
    name: str
    metadata: dict[str, Any] | None = None
    createdAt: str
    updatedAt: str


class OrganizationProjectsResponse(Body):
    projects: list[OrganizationProject]


class ApiKeySummary(Body):
    id: str
    createdAt: str
    expiresAt: str | None = None
    lastUsedAt: str | None = None
    note: str | None = None
    publicKey: str
    displaySecretKey: str


class OrganizationApiKeysResponse(Body):
    apiKeys: list[ApiKeySummary]


class ApiKeyList(Body):
    apiKeys: list[ApiKeySummary]


class ApiKeyResponse(Body):
    id: str
    createdAt: str
    publicKey: str
    secretKey: str
    displaySecretKey: str
    note: str | None = None


class ApiKeyDeletionResponse(Body):
    success: bool


class ProjectDeletionResponse(Body):
    success: bool
    message: str


class MembershipResponse(Body):
    userId: str
    role: str
    email: str
    name: str


class MembershipsResponse(Body):
    memberships: list[MembershipResponse]


class MembershipDeletionResponse(Body):
    message: str
    userId: str


class SubmitFeedbackResponse(Body):
    id: str


# ---- SCIM 2.0 ---------------------------------------------------------------------------------
class ScimFeatureSupport(Body):
    supported: bool


class BulkConfig(Body):
    supported: bool
    maxOperations: int
    maxPayloadSize: int


class FilterConfig(Body):
    supported: bool
    maxResults: int


class AuthenticationScheme(Body):
    name: str
    description: str
    specUri: str
    type: str
    primary: bool


class ResourceMeta(Body):
    resourceType: str
    location: str


class ServiceProviderConfig(Body):
    schemas: list[str]
    documentationUri: str
    patch: ScimFeatureSupport
    bulk: BulkConfig
    filter: FilterConfig
    changePassword: ScimFeatureSupport
    sort: ScimFeatureSupport
    etag: ScimFeatureSupport
    authenticationSchemes: list[AuthenticationScheme]
    meta: ResourceMeta


class SchemaExtension(Body):
    schema_: str = Field(alias="schema")
    required: bool


class ResourceType(Body):
    schemas: list[str] | None = None
    id: str
    name: str
    endpoint: str
    description: str
    schema_: str = Field(alias="schema")
    schemaExtensions: list[SchemaExtension]
    meta: ResourceMeta


class ResourceTypesResponse(Body):
    schemas: list[str]
    totalResults: int
    Resources: list[ResourceType]


class SchemaResource(Body):
    id: str
    name: str
    description: str
    attributes: list[Any]
    meta: ResourceMeta


class SchemasResponse(Body):
    schemas: list[str]
    totalResults: int
    Resources: list[SchemaResource]


class ScimName(Body):
    formatted: str | None = None


class ScimEmail(Body):
    primary: bool
    value: str
    type: str


class UserMeta(Body):
    resourceType: str
    created: str | None = None
    lastModified: str | None = None


class ScimUser(Body):
    schemas: list[str]
    id: str
    userName: str
    name: ScimName
    emails: list[ScimEmail]
    meta: UserMeta


class ScimUsersListResponse(Body):
    schemas: list[str]
    totalResults: int
    startIndex: int
    itemsPerPage: int
    Resources: list[ScimUser]


class EmptyResponse(Body):
    pass


# ---- dashboards (unstable API) ----------------------------------------------------------------
class WidgetDimension(Body):
    field: str


class WidgetMetric(Body):
    measure: str
    agg: str


class WidgetFilter(Body):
    column: str
    operator: str
    type: str
    value: Any = None
    key: str | None = None


class WidgetChartConfig(Body):
    type: str
    row_limit: int | None = None
    show_value_labels: bool | None = None
    bins: int | None = None
    defaultSort: dict[str, Any] | None = None


class UnstableDashboardWidget(Body):
    id: str
    createdAt: str
    updatedAt: str
    name: str
    description: str
    view: str
    dimensions: list[WidgetDimension]
    metrics: list[WidgetMetric]
    filters: list[WidgetFilter]
    chartType: str
    chartConfig: WidgetChartConfig


class UnstableDashboardWidgetList(Body):
    data: list[UnstableDashboardWidget]
    meta: PageMeta


class DashboardPlacement(Body):
    """A tile: `type` widget (with `widgetId`) or preset (with `presetId`)."""

    type: str
    id: str
    widgetId: str | None = None
    presetId: str | None = None
    x: int
    y: int
    width: int
    height: int


class DashboardDefinition(Body):
    widgets: list[DashboardPlacement]


class UnstableDashboard(Body):
    id: str
    createdAt: str
    updatedAt: str
    name: str
    description: str
    definition: DashboardDefinition
    filters: list[WidgetFilter]


class UnstableDashboardList(Body):
    data: list[UnstableDashboard]
    meta: PageMeta
