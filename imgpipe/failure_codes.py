"""Which failure codes leave an upload nothing to go back to: the processing job removes the
original of an upload refused for its content, and a reprocess has no original to retry from.
Here, on the shared floor, because the workers record them and `imgpipe reprocess` reads them.
"""

from __future__ import annotations

# Failure codes of an original stored otherwise than its upload URL signed. Each one's original
# is removed, as any refused for what it contains.
STORED_METADATA_CODES = {
    "encrypted_original": "stored with customer-key encryption (SSE-C), which the upload URL did not sign",
    "encoded_original": "stored with a Content-Encoding (gzip, br, …), which the upload URL did not sign",
    "copied_original": "stored with another content type than the declared one: a server-side copy"
                       " (x-amz-copy-source) keeps its source's",
    "size_mismatch": "stored with another length than the declared size",
    "unsigned_metadata": "stored with metadata the upload URL did not sign (user metadata, tags, a storage class)",
}
# Failures caused by the upload's own bytes, or by how they were stored: its original can never
# become anything.
REJECTED_CONTENT = frozenset({"empty_file", "not_an_image", "corrupt_image", "too_large", "too_many_pixels",
                              "unsupported_format", *STORED_METADATA_CODES})
# Failures that leave no original to go back to: the upload's own bytes were refused (and
# removed), or there never was one.
WITHOUT_ORIGINAL = REJECTED_CONTENT | {"missing_original", "upload_expired", "upload_aborted"}
