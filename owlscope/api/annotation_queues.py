"""Annotation queues: /api/public/annotation-queues (queues, their items and assignments)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from owlscope.annotation.items import (
    CreateItemRequest,
    UpdateItemRequest,
    add_item,
    delete_item,
    get_item,
    list_items,
    update_item,
)
from owlscope.annotation.queues import (
    AssignmentRequest,
    CreateAnnotationQueueRequest,
    assign,
    create_queue,
    get_queue,
    list_queues,
    unassign,
)
from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import (
    AnnotationQueue,
    AnnotationQueueItem,
    CreateAnnotationQueueAssignmentResponse,
    DeleteAnnotationQueueAssignmentResponse,
    DeleteAnnotationQueueItemResponse,
    PaginatedAnnotationQueueItems,
    PaginatedAnnotationQueues,
    typed,
)
from owlscope.wire import PageRequest

router = APIRouter(tags=["AnnotationQueues"])
BASE = "/api/public/annotation-queues"


@router.get(BASE, **typed(PaginatedAnnotationQueues))
def queues_list(auth: AuthDep, services: ServicesDep, page: int | None = None,
                limit: int | None = None) -> dict[str, Any]:
    found = list_queues(services.sessions, project_id=auth.project_id, page=PageRequest.of(page, limit))
    return {"data": found.data, "meta": found.meta()}


@router.post(BASE, **typed(AnnotationQueue))
def queues_create(body: CreateAnnotationQueueRequest, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return create_queue(services.sessions, project_id=auth.project_id, data=body)


@router.get(BASE + "/{queueId}", **typed(AnnotationQueue))
def queues_get(queueId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return get_queue(services.sessions, project_id=auth.project_id, queue_id=queueId)


@router.get(BASE + "/{queueId}/items", **typed(PaginatedAnnotationQueueItems))
def items_list(queueId: str, auth: AuthDep, services: ServicesDep, status: str | None = None,
               page: int | None = None, limit: int | None = None) -> dict[str, Any]:
    found = list_items(services.sessions, project_id=auth.project_id, queue_id=queueId, status=status,
                       page=PageRequest.of(page, limit))
    return {"data": found.data, "meta": found.meta()}


@router.post(BASE + "/{queueId}/items", **typed(AnnotationQueueItem))
def items_create(queueId: str, body: CreateItemRequest, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return add_item(services.sessions, services.olap, project_id=auth.project_id, queue_id=queueId, data=body)


@router.get(BASE + "/{queueId}/items/{itemId}", **typed(AnnotationQueueItem))
def items_get(queueId: str, itemId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return get_item(services.sessions, project_id=auth.project_id, queue_id=queueId, item_id=itemId)


@router.patch(BASE + "/{queueId}/items/{itemId}", **typed(AnnotationQueueItem))
def items_update(queueId: str, itemId: str, body: UpdateItemRequest, auth: AuthDep,
                 services: ServicesDep) -> dict[str, Any]:
    return update_item(services.sessions, project_id=auth.project_id, queue_id=queueId, item_id=itemId, data=body)


@router.delete(BASE + "/{queueId}/items/{itemId}", **typed(DeleteAnnotationQueueItemResponse))
def items_delete(queueId: str, itemId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return delete_item(services.sessions, project_id=auth.project_id, queue_id=queueId, item_id=itemId)


@router.post(BASE + "/{queueId}/assignments", **typed(CreateAnnotationQueueAssignmentResponse))
def assignments_create(queueId: str, body: AssignmentRequest, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return assign(services.sessions, project_id=auth.project_id, queue_id=queueId, data=body)


@router.delete(BASE + "/{queueId}/assignments", **typed(DeleteAnnotationQueueAssignmentResponse))
def assignments_delete(queueId: str, body: AssignmentRequest, auth: AuthDep,
                       services: ServicesDep) -> dict[str, Any]:
    return unassign(services.sessions, project_id=auth.project_id, queue_id=queueId, data=body)
