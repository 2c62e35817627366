// The workbench refuses state-changing requests without this session's CSRF token. Forms carry
// it as a hidden field; scripts call promptmill.fetch, which sends it as the X-CSRF-Token header
// on every request that is not a GET or HEAD (the browser adds the Origin header itself).
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const token = meta ? meta.content : "";
  function guardedFetch(url, options) {
    const opts = Object.assign({credentials: "same-origin"}, options || {});
    const method = (opts.method || "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD") {
      const headers = new Headers(opts.headers || {});
      headers.set("X-CSRF-Token", token);
      opts.headers = headers;
    }
    return fetch(url, opts);
  }
  window.promptmill = Object.assign(window.promptmill || {}, {fetch: guardedFetch, csrfToken: token});
})();
