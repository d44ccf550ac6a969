// The test's web app: its backend (the test's server) mints upload tokens at /token, and its
// page uploads to the imgpipe API, on another origin, with docs/guides/web-apps.md's modules (window.WebApp).
"use strict";

const api = new URLSearchParams(location.search).get("api");
const list = document.getElementById("uploads");

async function uploadToken(files) {
  const response = await fetch(`/token?files=${files}`);
  return response.text();
}

function entry(name) {
  const item = document.createElement("li");
  item.dataset.name = name;
  list.append(item);
  return item;
}

function showResults(name, results) {
  const item = entry(name);
  const thumbnail = document.createElement("img");
  thumbnail.src = results.thumbnail;
  thumbnail.alt = name;
  item.append(thumbnail);
  item.dataset.results = JSON.stringify(results);
  item.dataset.status = "completed";
}

function showError(name, error) {
  const item = entry(name);
  item.textContent = String(error);
  item.dataset.status = "failed";
}

document.getElementById("uppy-files").addEventListener("change", async (event) => {
  const files = Array.from(event.target.files);
  const uppy = WebApp.imgpipeUppy({
    api,
    token: await uploadToken(files.length),
    onResults: (file, results) => showResults(file.name, results),
    onError: (file, error) => showError(file.name, error),
  });
  for (const file of files) uppy.addFile({ name: file.name, type: file.type, data: file });
  document.dispatchEvent(new CustomEvent("uppy-ready", { detail: uppy })); // for tests that steer it
  uppy.upload();
});

document.getElementById("fetch-files").addEventListener("change", async (event) => {
  for (const file of Array.from(event.target.files)) {
    const token = await uploadToken(1);
    WebApp.uploadWithFetch({ api, token, file }).then(
      (results) => showResults(file.name, results),
      (error) => showError(file.name, error),
    );
  }
});
