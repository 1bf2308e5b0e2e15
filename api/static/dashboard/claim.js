// The claim page while its documents are read: follows the claim's events (Server-Sent Events,
// as GET /v1/claims/{id}/events sends them), counts the documents read, and shows the decided
// claim (checks, totals, review form) by reloading once it is decided.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var section = document.getElementById("claim");
    if (!section || !section.dataset.events || !window.EventSource) return;
    var source = new EventSource(section.dataset.events);
    function update(event) {
      var claim = JSON.parse(event.data);
      var done = claim.jobs.filter(function (j) { return j.status === "succeeded" || j.status === "failed"; });
      document.getElementById("claim-done").textContent = String(done.length);
      claim.jobs.forEach(function (job) {
        var row = document.querySelector('tr[data-job="' + job.id + '"] .state');
        if (row) row.textContent = job.stage && job.status === "running" ? "running · " + job.stage : job.status;
      });
      if (claim.status === "decided") {
        source.close();
        window.location.reload();
      }
    }
    source.addEventListener("status", update);
    source.addEventListener("done", update);
  });
})();
