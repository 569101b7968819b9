"""The in-app inbox on Amazon DynamoDB (``projections.notifications.inbox.Inbox``), for
the scaled mode: one item per (user, notification), partition key ``user_id``, sort
key ``key`` (``inbox_key``: created_at in microseconds, then the notification id), so
a user's inbox is one partition read in key order either way.

- ``put`` is conditional on the key not being there: the key is fixed per
  notification, so a second delivery of the same one is stored once.
- Unread counts are counted from the items each time (a Query filtered on
  ``read_at`` being absent, ``Select=COUNT``), never kept in a counter that could
  drift from them; cost grows with the user's inbox, as the Postgres count does.
- ``mark_read`` is given the notification id, not the key (the created_at part is
  unknown to the caller). It asks the ``by_notification`` index (partition
  ``notification_id``, sort ``user_id``, keys only): one small read however big the
  inbox, and scoped to the user by its key, so another user's notification is not
  found. An index is eventually consistent, so on a miss (a notification stored a
  moment ago, or none) the user's own partition is read consistently, filtered on
  the id, before answering False: the index makes the common case cheap, never the
  answer wrong.
- Every read that can be followed by a write of the same caller is a consistent read.
- ``forget`` (an erased user) deletes the user's items one by one (no multi-item
  DELETE; erasures are rare), from a consistent read of their partition.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Unpack
from uuid import UUID

from botocore.exceptions import ClientError
from psycopg import Cursor

from projections.notifications.inbox import InboxItem

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        QueryInputTypeDef,
        QueryOutputTypeDef,
    )

BY_NOTIFICATION = "by_notification"
_KEY = {"#k": "key"}  # KEY is a DynamoDB reserved word
_UNREAD = "attribute_not_exists(read_at)"
_CONDITION_FAILED = "ConditionalCheckFailedException"


def create_table(client: DynamoDBClient, name: str) -> None:
    """The inbox table and its index, on demand capacity; waits until it is active.
    Leaves an existing table as it is (compose and tests run it at every start)."""
    try:
        client.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": "user_id", "AttributeType": "S"},
                {"AttributeName": "key", "AttributeType": "S"},
                {"AttributeName": "notification_id", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "user_id", "KeyType": "HASH"},
                {"AttributeName": "key", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": BY_NOTIFICATION,
                    "KeySchema": [
                        {"AttributeName": "notification_id", "KeyType": "HASH"},
                        {"AttributeName": "user_id", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    # The waiter's default polls every 20 s; a new table is active in seconds.
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )


class DynamoDBInbox:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put(self, item: InboxItem) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_to_item(item),
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames=_KEY,
            )
        except ClientError as error:
            if _code(error) == _CONDITION_FAILED:
                return False
            raise
        return True

    def put_many(self, items: Sequence[InboxItem]) -> None:
        for item in items:  # conditional writes cannot be batched
            self.put(item)

    def page(self, user_id: UUID, before: str | None, limit: int) -> list[InboxItem]:
        if before is None:
            condition, values = "user_id = :u", _values(user_id)
        else:
            condition, values = "user_id = :u AND #k < :key", _values(user_id, key=before)
        return self._items(condition, values, forward=False, limit=limit)

    def after(self, user_id: UUID, key: str, limit: int) -> list[InboxItem]:
        return self._items(
            "user_id = :u AND #k > :key", _values(user_id, key=key), forward=True, limit=limit
        )

    def unread_count(self, user_id: UUID) -> int:
        return sum(
            page["Count"]
            for page in self._query(
                TableName=self._table,
                KeyConditionExpression="user_id = :u",
                FilterExpression=_UNREAD,
                ExpressionAttributeValues=_values(user_id),
                Select="COUNT",
                ConsistentRead=True,
            )
        )

    def mark_read(self, user_id: UUID, notification_id: UUID, at: datetime) -> bool:
        key = self._key_of(user_id, notification_id)
        if key is None:
            return False
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"user_id": {"S": str(user_id)}, "key": {"S": key}},
                UpdateExpression="SET read_at = if_not_exists(read_at, :at)",
                ConditionExpression="attribute_exists(#k)",  # never create one
                ExpressionAttributeNames=_KEY,
                ExpressionAttributeValues={":at": {"S": at.isoformat()}},
            )
        except ClientError as error:
            if _code(error) == _CONDITION_FAILED:
                return False
            raise
        return True

    def mark_all_read(self, user_id: UUID, at: datetime) -> int:
        """Each unread item, one conditional update each (there is no multi-item
        UPDATE): one read meanwhile by ``mark_read`` is not counted twice."""
        changed = 0
        unread = self._query(
            TableName=self._table,
            KeyConditionExpression="user_id = :u",
            FilterExpression=_UNREAD,
            ProjectionExpression="#k",
            ExpressionAttributeNames=_KEY,
            ExpressionAttributeValues=_values(user_id),
            ConsistentRead=True,
        )
        for page in unread:
            for row in page["Items"]:
                try:
                    self._client.update_item(
                        TableName=self._table,
                        Key={"user_id": {"S": str(user_id)}, "key": row["key"]},
                        UpdateExpression="SET read_at = :at",
                        ConditionExpression=f"attribute_exists(#k) AND {_UNREAD}",
                        ExpressionAttributeNames=_KEY,
                        ExpressionAttributeValues={":at": {"S": at.isoformat()}},
                    )
                except ClientError as error:
                    if _code(error) != _CONDITION_FAILED:
                        raise
                else:
                    changed += 1
        return changed

    def forget(self, user_id: UUID, cursor: Cursor[Any] | None = None) -> None:
        """Not in Postgres: ``cursor`` is not used."""
        keys = self._query(
            TableName=self._table,
            KeyConditionExpression="user_id = :u",
            ProjectionExpression="#k",
            ExpressionAttributeNames=_KEY,
            ExpressionAttributeValues=_values(user_id),
            ConsistentRead=True,
        )
        for page in keys:
            for row in page["Items"]:
                self._client.delete_item(
                    TableName=self._table, Key={"user_id": {"S": str(user_id)}, "key": row["key"]}
                )

    def _key_of(self, user_id: UUID, notification_id: UUID) -> str | None:
        values = _values(user_id, n=str(notification_id))
        indexed = self._client.query(
            TableName=self._table,
            IndexName=BY_NOTIFICATION,
            KeyConditionExpression="notification_id = :n AND user_id = :u",
            ExpressionAttributeValues=values,
        )["Items"]
        if indexed:
            return indexed[0]["key"]["S"]
        for page in self._query(  # the index lags behind a put: ask the table itself
            TableName=self._table,
            KeyConditionExpression="user_id = :u",
            FilterExpression="notification_id = :n",
            ProjectionExpression="#k",
            ExpressionAttributeNames=_KEY,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        ):
            for row in page["Items"]:
                return row["key"]["S"]
        return None

    def _items(
        self, condition: str, values: dict[str, AttributeValueTypeDef], forward: bool, limit: int
    ) -> list[InboxItem]:
        """Up to ``limit`` items in key order, over as many responses as it takes (a
        response stops at 1 MB whatever the Limit)."""
        items: list[InboxItem] = []
        if limit <= 0:
            return items
        request: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": forward,
            "Limit": limit,
            "ConsistentRead": True,
        }
        if "#k" in condition:  # DynamoDB refuses a name the expressions do not use
            request["ExpressionAttributeNames"] = _KEY
        pages = self._query(**request)
        for page in pages:
            items.extend(_from_item(row) for row in page["Items"])
            if len(items) >= limit:
                break
        return items[:limit]

    def _query(self, **request: Unpack[QueryInputTypeDef]) -> Iterator[QueryOutputTypeDef]:
        """Every response of a Query, following ``LastEvaluatedKey``."""
        while True:
            response = self._client.query(**request)
            yield response
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _values(user_id: UUID, **strings: str) -> dict[str, AttributeValueTypeDef]:
    values: dict[str, AttributeValueTypeDef] = {":u": {"S": str(user_id)}}
    values.update({f":{name}": {"S": value} for name, value in strings.items()})
    return values


def _to_item(item: InboxItem) -> dict[str, AttributeValueTypeDef]:
    row: dict[str, AttributeValueTypeDef] = {
        "user_id": {"S": str(item.user_id)},
        "key": {"S": item.key},
        "notification_id": {"S": str(item.notification_id)},
        "kind": {"S": item.kind},
        "title": {"S": item.title},
        "body": {"S": item.body},
        "created_at": {"S": item.created_at.isoformat()},
    }
    if item.link is not None:
        row["link"] = {"S": item.link}
    if item.read_at is not None:
        row["read_at"] = {"S": item.read_at.isoformat()}
    return row


def _from_item(row: Mapping[str, AttributeValueTypeDef]) -> InboxItem:
    link = row.get("link")
    read_at = row.get("read_at")
    return InboxItem(
        user_id=UUID(row["user_id"]["S"]),
        notification_id=UUID(row["notification_id"]["S"]),
        kind=row["kind"]["S"],
        title=row["title"]["S"],
        body=row["body"]["S"],
        link=link["S"] if link is not None else None,
        created_at=datetime.fromisoformat(row["created_at"]["S"]),
        read_at=datetime.fromisoformat(read_at["S"]) if read_at is not None else None,
    )
