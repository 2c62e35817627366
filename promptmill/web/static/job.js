// Job progress: polls the job's JSON until it finishes, then reloads the page once.
(function () {
  const job = document.currentScript.dataset.job;
  function tick() {
    window.promptmill.fetch("/api/jobs/" + job).then(r => r.json()).then(function (j) {
      document.getElementById("job-status").textContent = j.status;
      document.getElementById("job-progress").value = j.progress;
      document.getElementById("job-progress-text").textContent = j.text;
      if (["done", "failed", "cancelled"].includes(j.status)) { location.reload(); return; }
      setTimeout(tick, 1000);
    }).catch(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 1000);
})();
