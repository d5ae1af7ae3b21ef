"""Mail attachments in MongoDB GridFS, written once per (mail, position).

The file id is derived from the message's identity, so fetching the same mail again
after a restart finds the attachment already stored instead of storing a copy.

Docs: https://pymongo.readthedocs.io/en/stable/api/gridfs/asynchronous/index.html
"""

from __future__ import annotations

from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import FileExists, NoFile
from pymongo.asynchronous.database import AsyncDatabase

from channels.email.parser import Attachment
from channels.errors import PermanentSendError


class AttachmentStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, bucket: str = "email_attachments") -> None:
        self._bucket = AsyncGridFSBucket(db, bucket_name=bucket)

    async def put(self, file_id: str, attachment: Attachment, metadata: dict[str, Any]) -> str:
        try:
            await self._bucket.upload_from_stream_with_id(
                file_id,
                attachment.filename,
                attachment.data,
                metadata={**metadata, "content_type": attachment.content_type, "size": len(attachment.data)},
            )
        except FileExists:
            pass  # stored on an earlier fetch of the same mail
        return file_id

    async def get(self, file_id: str) -> bytes:
        try:
            stream = await self._bucket.open_download_stream(file_id)
        except NoFile as exc:
            raise PermanentSendError(f"attachment {file_id} is not stored") from exc
        data: bytes = await stream.read()
        return data
