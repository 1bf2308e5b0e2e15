// Live pages: the Upload page (many files as one batch, each file's upload progress, then each
// decision as it is made) and the batch and job pages, all fed by Server-Sent Events — no reload
// and no polling loop. An EventSource reconnects by itself with Last-Event-ID, and the server
// sends only what is newer than that id, so a dropped connection costs nothing.
(function () {
  "use strict";

  // The page's language: the strings below are English; the page carries their translations
  // (dashboard/base.html, #i18n-strings). t("Submit {n} files", {n: 3}).
  var strings = {};
  try { strings = JSON.parse(document.getElementById("i18n-strings").textContent) || {}; } catch (e) { strings = {}; }
  function t(text, values) {
    var out = strings[text] || text;
    Object.keys(values || {}).forEach(function (k) { out = out.split("{" + k + "}").join(String(values[k])); });
    return out;
  }
  var lang = document.documentElement.lang || "en";
  function amount(n) {
    try { return n.toLocaleString(lang, {minimumFractionDigits: 2, maximumFractionDigits: 2}); } catch (e) { return n.toFixed(2); }
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function badge(decision) {
    return el("span", {"class": "badge " + (decision || "none")}, t(decision || "pending"));
  }

  function size(n) {
    var units = [["GiB", 1073741824], ["MiB", 1048576], ["KiB", 1024]];
    for (var i = 0; i < units.length; i++) {
      if (n >= units[i][1]) return (n / units[i][1]).toPrecision(3).replace(/\.?0+$/, "") + " " + units[i][0];
    }
    return t("{n} bytes", {n: n});
  }

  function statusText(job) {
    return job.stage && job.status === "running" ? t("running") + " · " + t(job.stage) : t(job.status);
  }

  function reasonsList(job) {
    var list = el("ul", {"class": "reasons"});
    if (job.status === "failed" && job.error) {
      list.appendChild(el("li", {"class": "reject"}, job.error.code + ": " + job.error.message));
    } else if (job.reasons) {
      job.reasons.forEach(function (r) {
        var item = el("li", {"class": r.outcome});
        item.appendChild(el("code", {}, r.check));
        item.appendChild(document.createTextNode(" " + (r.message || "")));
        list.appendChild(item);
      });
      if (!job.reasons.length) list.appendChild(el("li", {"class": "approve"}, t("No check fired.")));
    }
    return list;
  }

  // One EventSource for a batch or job: `status` events carry the whole state (applied with
  // `apply`), `done` the final one (then the stream is closed). The element's data attributes
  // record what was received: connections opened and event ids, in order (tests read them).
  function follow(url, holder, apply, failed) {
    var source = new EventSource(url);
    var ids = [];
    holder.dataset.connections = "0";
    source.addEventListener("open", function () {
      holder.dataset.connections = String(Number(holder.dataset.connections) + 1);
    });
    source.addEventListener("status", function (e) {
      ids.push(e.lastEventId);
      holder.dataset.eventIds = ids.join(",");
      apply(JSON.parse(e.data), false);
    });
    source.addEventListener("done", function (e) {
      source.close();
      apply(JSON.parse(e.data), true);
      holder.dataset.live = "done";
    });
    source.addEventListener("error", function () {
      // A dropped connection is retried by the browser (readyState CONNECTING); a refusal
      // (signed out: 401, not yours: 404, server full: 503) closes the source for good.
      if (source.readyState === EventSource.CLOSED && holder.dataset.live !== "done") {
        holder.dataset.live = "closed";
        if (failed) failed();
      }
    });
    holder.dataset.live = "open";
    return source;
  }

  // ---- Upload ----
  function uploadPage(form) {
    var maxBytes = Number(form.dataset.maxFileBytes), maxFiles = Number(form.dataset.maxFiles);
    var table = document.getElementById("upload-files"), body = table.querySelector("tbody");
    var message = document.getElementById("upload-message");
    var picker = document.getElementById("files"), drop = document.getElementById("drop");
    var send = document.getElementById("send");
    var items = [];  // {file, row, tooLarge, jobId, decided}
    var sent = false;

    function say(text, kind) {
      message.hidden = !text;
      message.textContent = text || "";
      message.className = "flash" + (kind ? " " + kind : "");
    }

    function cell(row, name) { return row.querySelector("td." + name); }

    function setProblem(item, code, detail) {
      item.row.classList.add("rejected");
      item.row.dataset.problem = code;
      cell(item.row, "state").textContent = t("rejected");
      var problem = cell(item.row, "reasons");
      problem.textContent = "";
      problem.appendChild(el("span", {"class": "problem"}, detail));
    }

    function add(files) {
      if (sent) return;
      Array.prototype.forEach.call(files, function (file) {
        var row = el("tr", {"data-file": file.name});
        row.appendChild(el("td", {"class": "name"}, file.name));
        row.appendChild(el("td", {"class": "num size"}, size(file.size)));
        var progress = el("td", {"class": "sent"});
        var bar = el("progress", {max: String(file.size || 1), value: "0"});
        progress.appendChild(bar);
        row.appendChild(progress);
        row.appendChild(el("td", {"class": "state"}, t("ready")));
        row.appendChild(el("td", {"class": "decision"}));
        row.appendChild(el("td", {"class": "reasons"}));
        var remove = el("td", {"class": "remove"});
        var button = el("button", {type: "button", "class": "link", title: t("Leave this file out")}, t("remove"));
        remove.appendChild(button);
        row.appendChild(remove);
        var item = {file: file, row: row, bar: bar, tooLarge: file.size > maxBytes, decided: 0};
        button.addEventListener("click", function () {
          items.splice(items.indexOf(item), 1);
          row.remove();
          refresh();
        });
        if (item.tooLarge) {
          // Checked here against the server's own limit: no point sending what it must refuse.
          setProblem(item, "file_too_large", t("Too large: {size}, the limit is {limit}.", {size: size(file.size), limit: size(maxBytes)}));
        }
        items.push(item);
        body.appendChild(row);
      });
      refresh();
    }

    function sendable() { return items.filter(function (i) { return !i.tooLarge; }); }

    function refresh() {
      table.hidden = !items.length;
      var n = sendable().length;
      send.textContent = n ? (n === 1 ? t("Submit {n} file", {n: n}) : t("Submit {n} files", {n: n})) : t("Submit");
      send.disabled = sent || !n;
      form.dataset.files = String(items.length);
    }

    picker.addEventListener("change", function () { add(picker.files); picker.value = ""; });
    ["dragenter", "dragover"].forEach(function (type) {
      drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      drop.addEventListener(type, function () { drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files) add(e.dataTransfer.files);
    });

    // One request for the whole batch: its upload progress (bytes of the multipart body) is
    // laid over the files in the order they were appended.
    function showProgress(files, loaded, total) {
      var payload = files.reduce(function (sum, i) { return sum + i.file.size; }, 0);
      var through = total ? loaded * payload / total : 0, offset = 0;
      files.forEach(function (i) {
        var part = Math.max(0, Math.min(i.file.size, through - offset));
        i.bar.value = i.file.size ? part : (through >= offset ? 1 : 0);
        offset += i.file.size;
      });
    }

    function accepted(files, answer) {
      var rejected = {};
      (answer.rejected || []).forEach(function (r) { rejected[r.index] = r; });
      var jobUrl = form.dataset.jobUrl, jobs = answer.job_ids || [], next = 0, byJob = {};
      files.forEach(function (item, index) {
        var problem = rejected[index];
        if (problem) {
          setProblem(item, problem.code, problem.detail);
          return;
        }
        if (!answer.job_ids) return;
        item.jobId = jobs[next++];
        byJob[item.jobId] = item;
        item.row.dataset.job = item.jobId;
        var name = cell(item.row, "name");
        name.textContent = "";
        name.appendChild(el("a", {href: jobUrl.replace("JOB_ID", item.jobId)}, item.file.name));
        cell(item.row, "state").textContent = t("queued");
      });
      return byJob;
    }

    function live(answer, byJob) {
      var link = document.getElementById("batch-link");
      link.href = answer.links.batch;
      link.textContent = answer.id.slice(0, 8);
      document.getElementById("upload-batch").hidden = false;
      var summary = document.getElementById("upload-summary");
      follow(answer.links.events, form, function (batch, done) {
        batch.jobs.forEach(function (job) {
          var item = byJob[job.id];
          if (!item) return;
          cell(item.row, "state").textContent = statusText(job);
          item.row.dataset.status = job.status;
          if (job.decision && item.row.dataset.decision !== job.decision) {
            item.decided += 1;  // each decision is applied once, whatever reconnects happened
            item.row.dataset.decision = job.decision;
            item.row.dataset.decided = String(item.decided);
            var d = cell(item.row, "decision");
            d.textContent = "";
            d.appendChild(badge(job.decision));
          }
          if (job.status === "succeeded" || job.status === "failed") {
            var reasons = cell(item.row, "reasons");
            reasons.textContent = "";
            reasons.appendChild(reasonsList(job));
          }
        });
        var c = batch.counts;
        summary.textContent = t("{done} of {total} done", {done: c.succeeded + c.failed, total: batch.total}) +
          (done ? "" : " · " + t("{running} running, {queued} queued", {running: c.running, queued: c.queued}));
        if (done) say(t("All decisions are in."), "ok");
      }, function () {
        say(t("Live updates stopped (signed out, or the server refused the stream); the batch page has the state."), "warn");
      });
    }

    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var files = sendable();
      if (!files.length) return;
      if (files.length > maxFiles) {
        say(t("A batch holds at most {max} files; remove {extra}.", {max: maxFiles, extra: files.length - maxFiles}), "error");
        return;
      }
      sent = true;
      refresh();
      Array.prototype.forEach.call(form.querySelectorAll("select, textarea, input, button"), function (c) { c.disabled = true; });
      body.querySelectorAll("td.remove button").forEach(function (b) { b.remove(); });
      var data = new FormData();
      data.append("csrf_token", form.querySelector("input[name=csrf_token]").value);
      data.append("rule", document.getElementById("rule").value);
      data.append("note", document.getElementById("note").value);
      files.forEach(function (i) {
        data.append("files", i.file, i.file.name);
        cell(i.row, "state").textContent = t("uploading");
      });
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (p) {
        if (p.lengthComputable) showProgress(files, p.loaded, p.total);
      });
      xhr.upload.addEventListener("load", function () {
        showProgress(files, 1, 1);
        files.forEach(function (i) { cell(i.row, "state").textContent = t("checking"); });
        say(t("Uploaded; checking the files…"));
      });
      xhr.addEventListener("load", function () {
        var answer = null;
        try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = null; }
        if (xhr.status === 202 && answer) {
          var n = (answer.rejected || []).length;
          say(t("{n} file(s) accepted", {n: answer.job_ids.length}) + (n ? t(", {n} refused", {n: n}) : "") +
              t("; decisions appear here as they are made."), n ? "warn" : "");
          live(answer, accepted(files, answer));
        } else {
          // 422: no file could be accepted (each one's problem in `rejected`); else the whole upload failed.
          if (answer && answer.rejected) accepted(files, answer);
          files.forEach(function (i) {
            if (!i.row.classList.contains("rejected")) cell(i.row, "state").textContent = t("not sent");
          });
          say((answer && (answer.detail || answer.title)) || t("The upload failed (HTTP {status}).", {status: xhr.status}), "error");
        }
        form.dataset.upload = String(xhr.status);
      });
      xhr.addEventListener("error", function () {
        say(t("The upload did not reach the server (network error); nothing was submitted."), "error");
        form.dataset.upload = "error";
      });
      xhr.send(data);
    });
    refresh();
    form.dataset.ready = "true";
  }

  // ---- Batch ----
  function batchPage(section) {
    follow(section.dataset.events, section, function (batch) {
      var total = batch.total, finished = batch.counts.succeeded + batch.counts.failed;
      var bar = document.getElementById("batch-progress");
      bar.max = total;
      bar.value = finished;
      document.getElementById("batch-done").textContent = finished;
      document.getElementById("batch-percent").textContent = total ? Math.round(finished / total * 100) : 100;
      Object.keys(batch.counts).forEach(function (status) {
        var b = section.querySelector('b[data-count="' + status + '"]');
        if (b) b.textContent = batch.counts[status];
      });
      var decisions = {approve: 0, needs_review: 0, reject: 0};
      batch.jobs.forEach(function (job) {
        if (job.decision) decisions[job.decision] += 1;
        var row = section.querySelector('tr[data-job="' + job.id + '"]');
        if (!row) return;  // on a later page of the table
        row.querySelector("td.state").textContent = statusText(job);
        if (job.decision && row.dataset.decision !== job.decision) {
          row.dataset.decided = String(Number(row.dataset.decided || 0) + 1);
          row.dataset.decision = job.decision;
          var d = row.querySelector("td.decision");
          d.textContent = "";
          d.appendChild(badge(job.decision));
        }
        // The same summary the page was rendered with (db/review_queue.py), as it arrives.
        row.querySelector("td.merchant").textContent = job.merchant || "";
        row.querySelector("td.amount").textContent = job.amount === null || job.amount === undefined ? "" : amount(job.amount);
      });
      Object.keys(decisions).forEach(function (d) {
        var b = section.querySelector('b[data-decisions="' + d + '"]');
        if (b) b.textContent = decisions[d];
      });
    });
  }

  // ---- Job ----
  function jobPage(head) {
    follow(head.dataset.events, head, function (job, done) {
      document.getElementById("job-status").textContent = statusText(job);
      var b = document.getElementById("job-badge");
      b.textContent = "";
      b.appendChild(badge(job.decision));
      if (!done) return;
      var box = document.getElementById("decision");
      box.textContent = "";
      if (job.status === "failed") {
        box.appendChild(el("h2", {}, t("Failed")));
        box.appendChild(el("p", {"class": "flash error"}, job.error ? job.error.code + " " + job.error.message : ""));
      } else {
        box.appendChild(el("h2", {}, t("Decision")));
        var p = el("p");
        p.appendChild(badge(job.decision));
        box.appendChild(p);
        box.appendChild(reasonsList(job));
        // The fields (and, for reviewers, the override form) come with the page itself.
        var more = el("p", {"class": "muted"});
        more.appendChild(el("a", {href: window.location.pathname, id: "show-fields"}, t("Show the fields")));
        box.appendChild(more);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload");
    if (form) uploadPage(form);
    var batch = document.querySelector("#batch[data-events]");
    if (batch) batchPage(batch);
    var head = document.querySelector("#job-head[data-events]");
    if (head) jobPage(head);
  });
})();
