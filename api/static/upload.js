// The upload page: the chosen files are presigned by the API (several in one batch request),
// each is PUT straight to object storage (its own progress bar), then its status is polled
// until its versions are ready. A big file goes in parts, several at once, each retried on its
// own when its connection fails, so a dropped connection costs one part, not the file. A page
// closed or reloaded in the middle keeps its upload in parts open: choosing the same file again
// sends only the parts the store does not hold. The most recent uploads are listed again when the
// page loads, and each one can be deleted.
"use strict";

const VERSIONS = ["original", "resized", "compressed", "thumbnail"];
// The server's default IMGPIPE_MAX_BATCH; a server with a lower limit makes batches split in two.
const BATCH_SIZE = 50;
const RECENT = 20;
const FINAL = ["completed", "failed", "deleted"];
// Parts of one file in flight at once, and the waits (ms) before each new try of a failed part.
const PARTS_AT_ONCE = 4;
const PART_RETRY_DELAYS = [0, 1000, 3000, 5000];

const STATUS_WORDS = {
  uploading: "Uploading…",
  resuming: "Uploading the rest…",
  interrupted: "Interrupted: choose the same file again to upload the rest.",
  pending: "Uploaded, waiting for a worker…",
  processing: "Making the versions…",
  completed: "Done",
  deleted: "Deleted",
};

const ERROR_WORDS = {
  unsupported_media_type: "This type of file is not accepted: choose a JPEG, PNG, GIF, WebP, TIFF, BMP, HEIC or AVIF image.",
  too_large: "The file is too large.",
  invalid_request: "The request was not understood.",
  unauthorized: "This server needs its API token.",
  storage_unavailable: "Storage is unavailable right now; try again shortly.",
  too_many_files: "Too many files at once.",
  empty_file: "The file is empty.",
  not_an_image: "This file is not an image.",
  corrupt_image: "The image is damaged or incomplete.",
  too_many_pixels: "The image has too many pixels.",
  unsupported_format: "This image format is not supported.",
  missing_original: "The upload disappeared before it could be processed.",
  upload_expired: "Nothing arrived before the upload link expired.",
  internal: "Processing failed on the server.",
  upload_failed: "The upload to storage failed.",
  upload_aborted: "The upload was stopped before the whole file arrived.",
  multipart_parts_missing: "Parts of the file did not reach storage.",
  multipart_not_open: "The upload in parts was stopped; upload the file again.",
  network_error: "The server could not be reached.",
};

// Browsers leave file.type empty for some image types; the API needs one to sign the upload.
const TYPES_BY_EXTENSION = {
  jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", gif: "image/gif", webp: "image/webp",
  tif: "image/tiff", tiff: "image/tiff", bmp: "image/bmp", heic: "image/heic", heif: "image/heif",
  avif: "image/avif",
};

class UploadError extends Error {
  // retriable: the request may succeed if sent again (the network, or the server for now).
  constructor(code, message, retriable = false) {
    super(message);
    this.code = code;
    this.retriable = retriable;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function callApi(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    throw new UploadError("network_error", String(error), true);
  }
  const document = await response.json().catch(() => null);
  if (!response.ok) {
    const error = document && document.error;
    throw new UploadError(error ? error.code : "http_error", error ? error.message : `HTTP ${response.status}`,
      response.status >= 500 || response.status === 429);
  }
  return document;
}

function contentTypeOf(file) {
  if (file.type) return file.type;
  const extension = file.name.includes(".") ? file.name.split(".").pop().toLowerCase() : "";
  return TYPES_BY_EXTENSION[extension] || "application/octet-stream";
}

// One PUT of a presigned request ({method, url, headers}); resolves to the ETag the store
// answered. onLoaded gets the bytes sent so far.
function putToStorage(request, body, onLoaded) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(request.method, request.url);
    for (const [name, value] of Object.entries(request.headers)) {
      // The browser sends the body's length itself and refuses to be told it.
      if (name.toLowerCase() !== "content-length") xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener("progress", (event) => onLoaded(event.loaded));
    xhr.addEventListener("load", () => {
      if (xhr.status < 300) return resolve(xhr.getResponseHeader("ETag"));
      const code = /<Code>([^<]+)<\/Code>/.exec(xhr.responseText || "");
      reject(new UploadError("upload_failed", `storage answered ${code ? code[1] : "HTTP " + xhr.status}`,
        xhr.status >= 500 || xhr.status === 429));
    });
    xhr.addEventListener("error", () => reject(new UploadError("upload_failed", "the connection to storage failed", true)));
    xhr.send(body);
  });
}

// The length of part `number` (1-based) of a file of `size` bytes: the API's plan follows from
// the declared size alone.
function partLength(multipart, size, number) {
  return number < multipart.part_count ? multipart.part_size : size - (multipart.part_count - 1) * multipart.part_size;
}

// A big file in parts, PARTS_AT_ONCE PUTs at a time, but for those already `stored` (part number
// -> ETag); then the API completes the upload from the parts the store holds. onLoaded gets the
// bytes of the whole file sent so far, never fewer than before: a part sent again fills its share
// again before the bar moves on.
async function putInParts(created, file, onLoaded, stored = new Map()) {
  const { id, multipart } = created;
  const numbers = Array.from({ length: multipart.part_count }, (_, index) => index + 1);
  const loaded = numbers.map((number) => (stored.has(number) ? partLength(multipart, file.size, number) : 0));
  const parts = [...stored].map(([number, etag]) => ({ part_number: number, etag }));
  const missing = numbers.filter((number) => !stored.has(number));
  let furthest = loaded.reduce((sum, value) => sum + value, 0);
  let givenUp = false;
  onLoaded(furthest);
  const worker = async () => {
    while (!givenUp && missing.length) {
      const number = missing.shift();
      const etag = await putPart(id, number, file, multipart.part_size, (bytes) => {
        loaded[number - 1] = bytes;
        furthest = Math.max(furthest, loaded.reduce((sum, value) => sum + value, 0));
        onLoaded(furthest);
      });
      parts.push({ part_number: number, etag });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(PARTS_AT_ONCE, missing.length) }, worker));
  } catch (error) {
    // Given up: no part is started any more, nothing stays behind in the store, and the row says why.
    givenUp = true;
    interrupted.forget(id);
    callApi("DELETE", `/uploads/${id}/multipart`).catch(() => {});
    throw error;
  }
  parts.sort((a, b) => a.part_number - b.part_number);
  await callApi("POST", `/uploads/${id}/multipart/complete`, { parts });
}

// One part, signed afresh for every try (a URL signs its part's number and length).
async function putPart(id, number, file, partSize, onLoaded) {
  for (let attempt = 0; ; attempt++) {
    try {
      const part = await callApi("GET", `/uploads/${id}/multipart/parts/${number}`);
      const start = (number - 1) * partSize;
      const etag = await putToStorage(part, file.slice(start, start + part.size), onLoaded);
      if (!etag) throw new UploadError("upload_failed", "the store's answer hides the part's ETag (its CORS)");
      return etag;
    } catch (error) {
      onLoaded(0);
      if (!error.retriable || attempt >= PART_RETRY_DELAYS.length) throw error;
      await sleep(PART_RETRY_DELAYS[attempt]);
    }
  }
}

// The uploads in parts this page started and did not finish, kept in localStorage across reloads
// under what the browser tells of each file (name, size, modification time), until their time at
// the API (multipart.expires_at) is over.
const interrupted = {
  KEY: "imgpipe.interrupted",
  entries() {
    try {
      const entries = JSON.parse(localStorage.getItem(this.KEY)) || {};
      return Object.fromEntries(Object.entries(entries).filter(([, kept]) => Date.parse(kept.multipart.expires_at) > Date.now()));
    } catch {
      return {};
    }
  },
  save(entries) {
    try {
      localStorage.setItem(this.KEY, JSON.stringify(entries));
    } catch {
      // Storage refused (full, or switched off): the upload goes on, it just cannot be resumed.
    }
  },
  keyOf: (file) => `${file.name}\n${file.size}\n${file.lastModified}`,
  remember(file, { id, multipart }) {
    this.save({ ...this.entries(), [this.keyOf(file)]: { id, multipart } });
  },
  of(file) {
    return this.entries()[this.keyOf(file)] || null;
  },
  has(id) {
    return Object.values(this.entries()).some((kept) => kept.id === id);
  },
  forget(id) {
    this.save(Object.fromEntries(Object.entries(this.entries()).filter(([, kept]) => kept.id !== id)));
  },
};

// The uploads in parts this page is sending now: the same file chosen again meanwhile is a new upload.
const sending = new Set();

// This file's interrupted upload, brought up to date with the store's own list of its parts (a
// part counts if it has its planned length): `stored` says what need not be sent again, `sent`
// that it was completed meanwhile. Null when there is none or it can no longer be resumed
// (aborted, expired, deleted): the file is then uploaded anew. An UploadError when the API could
// not be asked: the upload stays kept for another try.
async function resumed(file) {
  const kept = interrupted.of(file);
  if (!kept || sending.has(kept.id)) return null;
  try {
    const { parts } = await callApi("GET", `/uploads/${kept.id}/multipart/parts`);
    const fits = (part) => part.part_number <= kept.multipart.part_count
      && part.size === partLength(kept.multipart, file.size, part.part_number);
    return { ...kept, stored: new Map(parts.filter(fits).map((part) => [part.part_number, part.etag])) };
  } catch (error) {
    if (error.retriable) return error;
    if (error.code === "upload_not_pending") {
      const { status } = await callApi("GET", `/uploads/${kept.id}/status`).catch(() => ({}));
      if (status === "processing" || status === "completed") return { ...kept, sent: true };
    }
    interrupted.forget(kept.id);
    return null;
  }
}

async function waitUntilFinal(id, onStatus) {
  let pause = 250;
  for (;;) {
    const status = await callApi("GET", `/uploads/${id}/status`);
    if (FINAL.includes(status.status)) return status;
    onStatus(status.status);
    await sleep(pause);
    pause = Math.min(pause * 1.5, 2000);
  }
}

class Card {
  constructor(name) {
    this.node = document.getElementById("upload-card").content.firstElementChild.cloneNode(true);
    this.find(".name").textContent = name;
    this.bar = this.find("progress");
    this.show("uploading");
    this.find(".delete").addEventListener("click", () => this.remove());
  }

  // A card for an upload the API listed: as far along as the upload is, followed until it is final.
  static listed(upload) {
    const card = new Card(upload.filename);
    card.attach(upload.id);
    card.bar.hidden = true;
    if (upload.status === "completed") card.complete(upload.results);
    else if (upload.status === "failed") card.fail(upload.error.code, upload.error.message);
    else if (upload.status === "pending" && interrupted.has(upload.id)) card.show("interrupted");
    else {
      card.show(upload.status);
      card.follow(upload.id);
    }
    return card;
  }

  attach(id) {
    this.node.dataset.uploadId = id;
    this.find(".delete").hidden = false;
    // The list of recent uploads may have been fetched just after this one was created.
    for (const twin of document.querySelectorAll(`#recent [data-upload-id="${id}"]`)) twin.remove();
  }

  async follow(id) {
    try {
      const final = await waitUntilFinal(id, (status) => this.show(status));
      if (final.status === "failed") return this.fail(final.error.code, final.error.message);
      if (final.status === "deleted") return this.node.remove();
      this.complete(await callApi("GET", `/uploads/${id}/results`));
    } catch (error) {
      this.fail(error.code || "network_error", error.message);
    }
  }

  async remove() {
    const button = this.find(".delete");
    button.disabled = true;
    try {
      await callApi("DELETE", `/uploads/${this.node.dataset.uploadId}`);
      interrupted.forget(this.node.dataset.uploadId);
      this.node.remove();
    } catch (error) {
      button.disabled = false;
      this.fail(error.code || "network_error", error.message);
    }
  }

  find(selector) {
    return this.node.querySelector(selector);
  }

  show(status, detail = "") {
    this.node.dataset.status = status;
    const words = status === "uploading" && this.node.dataset.resumed ? STATUS_WORDS.resuming : STATUS_WORDS[status];
    this.find(".state").textContent = words + detail;
  }

  progress(fraction) {
    this.bar.value = Math.round(fraction * 100);
    this.show("uploading", ` ${this.bar.value}%`);
  }

  fail(code, message) {
    this.node.dataset.status = "failed";
    this.node.dataset.errorCode = code;
    this.bar.hidden = true;
    this.find(".state").textContent = ERROR_WORDS[code] || "Something went wrong.";
    const detail = this.find(".error-code");
    detail.textContent = `${code}: ${message}`;
    detail.hidden = false;
  }

  complete(results) {
    // An upload asked for in other formats only has no JPEG versions: show its first format's.
    const urls = results.thumbnail ? results : { ...Object.values(results.formats)[0], original: results.original };
    this.bar.hidden = true;
    this.show("completed");
    const image = this.find("img");
    image.src = urls.thumbnail;
    image.alt = `Thumbnail of ${this.find(".name").textContent}`;
    image.hidden = false;
    const links = this.find(".links");
    for (const version of VERSIONS) {
      const link = document.createElement("a");
      link.href = urls[version];
      link.textContent = version;
      link.target = "_blank";
      link.rel = "noopener";
      link.dataset.version = version;
      links.append(link);
    }
    links.hidden = false;
  }
}

// An upload (or the UploadError refusing it) for each body, in order: POST /uploads for one
// file, /uploads/batch for several.
async function createUploads(bodies) {
  if (bodies.length === 1) {
    return [await callApi("POST", "/uploads", bodies[0]).catch((error) => error)];
  }
  const answers = [];
  for (let start = 0; start < bodies.length; start += BATCH_SIZE) {
    answers.push(...(await createBatch(bodies.slice(start, start + BATCH_SIZE))));
  }
  return answers;
}

async function createBatch(bodies) {
  try {
    const created = await callApi("POST", "/uploads/batch", { files: bodies });
    return created.uploads.map((entry) => (entry.error ? new UploadError(entry.error.code, entry.error.message) : entry));
  } catch (error) {
    if (error.code === "too_many_files" && bodies.length > 1) {
      const half = Math.floor(bodies.length / 2);
      return [...(await createBatch(bodies.slice(0, half))), ...(await createBatch(bodies.slice(half)))];
    }
    return bodies.map(() => error);
  }
}

// A file whose upload in parts was interrupted goes on with it; the others are asked for anew.
async function uploadAll(files, list) {
  const cards = files.map((file) => new Card(file.name));
  list.append(...cards.map((card) => card.node));
  const kept = await Promise.all(files.map(resumed));
  const fresh = files.filter((_, index) => !kept[index]);
  const answers = (await createUploads(fresh.map((file) => ({
    filename: file.name, content_type: contentTypeOf(file), size: file.size,
  })))).values();
  files.forEach((file, index) => uploadOne(file, cards[index], kept[index] || answers.next().value));
}

async function uploadOne(file, card, created) {
  try {
    if (created instanceof Error) throw created;
    card.attach(created.id);
    if (created.stored) card.node.dataset.resumed = "true";
    const onLoaded = (bytes) => card.progress(file.size ? bytes / file.size : 1);
    if (created.multipart && !created.sent) {
      interrupted.remember(file, created);
      sending.add(created.id);
      try {
        await putInParts(created, file, onLoaded, created.stored);
      } finally {
        sending.delete(created.id);
      }
      interrupted.forget(created.id);
    } else if (!created.multipart) {
      await putToStorage(created.upload, file, onLoaded);
    }
    card.bar.value = 100;
  } catch (error) {
    return card.fail(error.code || "network_error", error.message);
  }
  await card.follow(created.id);
}

// The uploads made before this page was loaded, newest first, below the ones made from it.
async function showRecent(section) {
  const list = section.querySelector("ul");
  try {
    const page = await callApi("GET", `/uploads?limit=${RECENT}`);
    const shown = (id) => document.querySelector(`[data-upload-id="${id}"]`) !== null;
    list.append(...page.uploads.filter((upload) => !shown(upload.id)).map((upload) => Card.listed(upload).node));
  } catch (error) {
    const card = new Card("Recent uploads could not be listed");
    card.fail(error.code || "network_error", error.message);
    list.append(card.node);
  }
  section.hidden = list.children.length === 0;
}

document.addEventListener("DOMContentLoaded", () => {
  const input = document.getElementById("files");
  const drop = document.getElementById("drop");
  const list = document.getElementById("uploads");
  const start = (files) => {
    if (files.length) uploadAll(Array.from(files), list);
  };
  interrupted.save(interrupted.entries()); // drops those whose time is over
  showRecent(document.getElementById("recent-section"));

  input.addEventListener("change", () => {
    start(input.files);
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("dragging"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    start(event.dataTransfer.files);
  });
});
