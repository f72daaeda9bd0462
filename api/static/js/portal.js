// The customer portal's enhancements. Everything works without this file: forms post and
// redirect, uploads go through the plain form. With it: uploads with a progress bar (drag and
// drop, file or camera picker), each refusal next to its file; focus on form errors; one
// submission per form.
(function () {
  "use strict";

  function csrfToken(form) {
    var field = form.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  function textOf(html) {
    var holder = document.createElement("div");
    holder.innerHTML = html;
    return (holder.textContent || "").replace(/\s+/g, " ").trim();
  }

  function refreshLive() {
    // Ask the live part of the page for news now instead of at the next poll.
    document.body.dispatchEvent(new CustomEvent("portal:refresh"));
  }

  function uploadOne(form, file) {
    var list = document.getElementById("upload-progress");
    var item = document.createElement("li");
    var name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", (form.dataset.uploading || "Uploading") + " " + file.name);
    var status = document.createElement("span");
    status.className = "upload-status";
    item.appendChild(name);
    item.appendChild(bar);
    item.appendChild(status);
    if (list) list.appendChild(item);

    function done(ok, message) {
      bar.value = ok ? 100 : bar.value;
      bar.hidden = true;
      status.className = "upload-status " + (ok ? "ok" : "bad");
      status.textContent = message;
    }

    var maxBytes = parseInt(form.dataset.maxBytes || "0", 10);
    if (maxBytes && file.size > maxBytes) {
      done(false, form.dataset.tooLarge || "Too large");
      return Promise.resolve();
    }
    var data = new FormData();
    var type = form.querySelector('select[name="doc_type"]');
    data.append("doc_type", type ? type.value : "BANK_STATEMENT");
    data.append("file", file, file.name);

    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRF-Token", csrfToken(form));
      // Answers come as page fragments (a confirmation, or the refusal in the viewer's words).
      xhr.setRequestHeader("HX-Request", "true");
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
      });
      xhr.addEventListener("load", function () {
        done(xhr.status === 201, textOf(xhr.responseText) || form.dataset.failed);
        refreshLive();
        resolve();
      });
      xhr.addEventListener("error", function () { done(false, form.dataset.failed); resolve(); });
      xhr.addEventListener("abort", function () { done(false, form.dataset.failed); resolve(); });
      xhr.send(data);
    });
  }

  function uploadAll(form, files) {
    var chain = Promise.resolve();
    Array.prototype.forEach.call(files, function (file) {
      chain = chain.then(function () { return uploadOne(form, file); });
    });
    return chain;
  }

  var canUpload = typeof FormData !== "undefined" && "upload" in new XMLHttpRequest();

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches && form.matches("form[data-upload]") && canUpload) {
      event.preventDefault();
      var files = [];
      form.querySelectorAll('input[type="file"]').forEach(function (input) {
        Array.prototype.forEach.call(input.files || [], function (file) { files.push(file); });
        input.value = "";
      });
      if (!files.length) {
        var picker = form.querySelector('input[type="file"][name="file"]');
        if (picker) {
          picker.setCustomValidity(form.dataset.chooseFirst || "Choose a file first.");
          picker.reportValidity();
          picker.addEventListener("change", function () { picker.setCustomValidity(""); }, { once: true });
        }
        return;
      }
      uploadAll(form, files);
      return;
    }
    if (form.matches && form.matches("form[data-once]")) {
      // A second click sends nothing more (the server would answer with the same appeal).
      if (form.dataset.sent) { event.preventDefault(); return; }
      form.dataset.sent = "1";
    }
  });

  // Drag and drop onto the zone around the pickers uploads at once.
  function zoneOf(event) {
    return event.target.closest ? event.target.closest("[data-drop-zone]") : null;
  }
  ["dragenter", "dragover"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var zone = zoneOf(event);
      if (!zone || !canUpload) return;
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  document.addEventListener("dragleave", function (event) {
    var zone = zoneOf(event);
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });
  document.addEventListener("drop", function (event) {
    var zone = zoneOf(event);
    if (!zone || !canUpload) return;
    event.preventDefault();
    zone.classList.remove("dragging");
    var form = zone.closest("form[data-upload]");
    if (form && event.dataTransfer && event.dataTransfer.files.length) uploadAll(form, event.dataTransfer.files);
  });

  function enhance(focus) {
    if (canUpload) {
      document.querySelectorAll("[data-js-only][hidden]").forEach(function (element) { element.hidden = false; });
      // With the script the photo picker is an alternative: a file from either will do.
      document.querySelectorAll('form[data-upload] input[name="file"]').forEach(function (input) {
        input.required = false;
      });
    }
    var first = focus && document.querySelector("[data-focus-on-load]");
    if (first) first.focus();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { enhance(true); });
  else enhance(true);
  // Back to a form from the browser's cache: it may be sent again (the server keeps the key).
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-once][data-sent]").forEach(function (form) { delete form.dataset.sent; });
  });
  // A live update can bring the upload panel (the reviewer asked for more documents).
  document.addEventListener("htmx:afterSettle", function () { enhance(false); });
})();
