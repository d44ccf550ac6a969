"""The request bodies of POST /uploads and POST /uploads/batch, described once.

api/validation.py checks bodies field by field from these descriptions and api/openapi.py
publishes them as JSON Schema, so what the server enforces and what it documents cannot part.
Limits that depend on the deployment (accepted types, bytes, writable formats, files per
batch) are passed in by both, from the same settings. Pure data: no Flask.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class Field:
    """One member of a request body: its JSON type, whether it must be there, and its fixed limits."""

    name: str
    type: str  # "string", "integer", "boolean" or "array"
    description: str
    invalid: str  # the message of the 400 invalid_request for a value of the wrong shape
    required: bool = False  # an optional field also takes null, which means "not given"
    minimum: int | None = None
    max_length: int | None = None
    pattern: str | None = None  # how the string starts; with format, validation checks the full syntax itself
    format: str | None = None
    min_items: int | None = None
    items: str | None = None  # the JSON type of an array's items

    def schema(self) -> dict:
        schema = {"type": self.type if self.required else [self.type, "null"]}
        keywords = {"minimum": self.minimum, "maxLength": self.max_length, "pattern": self.pattern,
                    "format": self.format, "minItems": self.min_items}
        schema.update((keyword, value) for keyword, value in keywords.items() if value is not None)
        if self.items:
            schema["items"] = {"type": self.items}
        schema["description"] = self.description
        return schema


FILENAME = Field(
    "filename", "string", required=True, invalid="filename is required and must be a string",
    description="Kept as a label only (without any path); keys never use it. "
                "A name with nothing usable left is labelled \"upload\".")
CONTENT_TYPE = Field(
    "content_type", "string", required=True, invalid="content_type is required and must be a string",
    description="The image type; heic, heif and avif only where the server reads them. Case and parameters "
                "are ignored, as in a Content-Type header. Any other type is answered 415.")
SIZE = Field(
    "size", "integer", required=True, minimum=0,
    invalid="size is required: the file's exact length in bytes (a non-negative integer), which the upload URL is"
            " signed for (storage refuses any other length)",
    description="The file's exact length in bytes. The upload URL signs it as Content-Length, so storage refuses "
                "a PUT of any other length; over the limit is answered 400 too_large, and leaving it out "
                "400 invalid_request.")
FORMATS = Field(
    "formats", "array", items="string", min_items=1, invalid="formats must be a non-empty list of format names",
    description="The formats to make every derivative in (each once; repeats are ignored). "
                "null or left out: jpeg. Only the formats this server can write are listed.")
PRESETS = Field(
    "presets", "array", items="string", min_items=1, invalid="presets must be a non-empty list of preset names",
    description="The presets to make (each once; repeats are ignored). null or left out: every preset. "
                "Only this server's presets are listed (IMGPIPE_PRESETS; built in: resized, compressed, thumbnail).")
CALLBACK_URL = Field(
    "callback_url", "string", max_length=MAX_URL_LENGTH, pattern="^[Hh][Tt][Tt][Pp][Ss]?://", format="uri",
    invalid="callback_url must be an http(s) URL",
    description="Where to POST the whole record (signed) once the upload is completed or failed. A host that "
                "is, or resolves to, a loopback, private, link-local, multicast, reserved or cloud-metadata "
                "address is answered 400 callback_not_allowed unless the server allows it by name.")
MULTIPART = Field(
    "multipart", "boolean", invalid="multipart must be true, false or null",
    description="true: upload in parts (S3 multipart, resumable), false: one PUT. null or left out: in parts "
                "from IMGPIPE_MULTIPART_THRESHOLD_MB on. An empty file is always one PUT.")
NEW_UPLOAD = (FILENAME, CONTENT_TYPE, SIZE, FORMATS, PRESETS, CALLBACK_URL, MULTIPART)  # checked in this order

FILES = Field(
    "files", "array", required=True, items="object", min_items=1, invalid="files must be a non-empty list of objects",
    description="Bodies as POST /uploads takes them; one that is refused gets its error in its place in the "
                "answer, without failing the others.")
BATCH = (FILES,)


def new_upload_schema(content_types, max_bytes: int, formats, presets) -> dict:
    """POST /uploads' body with this server's limits; each is answered with its own code, not invalid_request."""
    properties = {field.name: field.schema() for field in NEW_UPLOAD}
    properties[CONTENT_TYPE.name]["enum"] = list(content_types)  # 415 unsupported_media_type
    properties[SIZE.name]["maximum"] = max_bytes  # 400 too_large
    properties[FORMATS.name]["items"]["enum"] = list(formats)  # 400 unsupported_output_format
    properties[PRESETS.name]["items"]["enum"] = list(presets)  # 400 unknown_preset
    return _object(NEW_UPLOAD, properties)


def batch_schema(max_files: int) -> dict:
    properties = {field.name: field.schema() for field in BATCH}
    properties[FILES.name]["maxItems"] = max_files  # 400 too_many_files
    return _object(BATCH, properties)


def _object(fields: tuple[Field, ...], properties: dict) -> dict:
    return {"type": "object", "properties": properties,
            "required": [field.name for field in fields if field.required], "additionalProperties": False}
