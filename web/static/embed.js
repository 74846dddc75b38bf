/*! Newsdesk related-coverage embed.
 *
 *   <script async src="https://HOST/embed.js" data-newsdesk-related></script>
 *
 * Reads the page's canonical URL, og:title, description and article:published_time (or the
 * script's data-url, data-title, data-text, data-date, data-limit attributes, or data-story to name a story), asks
 * HOST/api/v1/related, and renders a small box in a shadow root right after the script tag
 * (or inside the element named by data-target). Every string from the server is inserted as
 * text, never as HTML, and only http(s) links are made clickable.
 */
(function () {
  "use strict";

  // The box fits any container down to 280 px: it never asks for more room than it is given
  // (min-width:0, long words break, teasers wrap to two lines), so a partner's flex or grid sidebar
  // keeps its width instead of being pushed off screen.
  var CSS =
    ":host{all:initial;display:block;margin:1rem 0;min-width:0;max-width:100%}" +
    ".nd{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d1f23;box-sizing:border-box;" +
    "border:1px solid #e3e6ea;border-radius:8px;padding:.75rem .9rem;background:#fff;max-width:36rem;min-width:0;" +
    "overflow-wrap:anywhere}" +
    "h2{font-size:1rem;margin:0 0 .5rem}" +
    "ol{list-style:none;margin:0;padding:0}" +
    "li{padding:.45rem 0;border-top:1px solid #e3e6ea}li:first-child{border-top:0;padding-top:0}" +
    ".meta{color:#5a606b;font-size:.8rem;margin:0}" +
    // Only a real link is link-coloured: an item without one reads as the text around it.
    ".title{font-weight:600;margin:.1rem 0;display:block}a.title{color:#0b57d0}" +
    ".teaser{margin:0;color:#3c4043;font-size:.85rem;display:-webkit-box;-webkit-line-clamp:2;" +
    "-webkit-box-orient:vertical;overflow:hidden}" +
    ".credit{font-size:.75rem;color:#5a606b;margin:.5rem 0 0}" +
    "a:focus-visible{outline:3px solid #f4b400;outline-offset:2px}";

  function meta(selector) {
    var node = document.querySelector(selector);
    return node ? (node.getAttribute("content") || node.getAttribute("href") || "").trim() : "";
  }

  function httpUrl(value, base) {
    // Only absolute http(s) URLs become links; javascript:, data: and the like stay text.
    try {
      var url = new URL(value, base);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = String(text);
    return node;
  }

  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function formatDate(iso) {
    // The same unambiguous form as the iframe and the sidebar ("7 May 2024, 11:15 UTC"), whatever the
    // reader's time zone and locale.
    if (typeof iso !== "string") return "";
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    function pad(n) { return (n < 10 ? "0" : "") + n; }
    return date.getUTCDate() + " " + MONTHS[date.getUTCMonth()] + " " + date.getUTCFullYear() + ", " +
      pad(date.getUTCHours()) + ":" + pad(date.getUTCMinutes()) + " UTC";
  }

  function render(root, items, origin) {
    var box = el("section", "nd");
    box.setAttribute("aria-label", "Related coverage");
    box.appendChild(el("h2", "", "Related coverage"));
    var list = el("ol");
    items.forEach(function (item) {
      if (!item || typeof item !== "object") return;
      var li = el("li");
      var metaLine = el("p", "meta");
      var time = el("time", "", formatDate(item.published_at));
      if (typeof item.published_at === "string") time.setAttribute("datetime", item.published_at);
      metaLine.appendChild(time);
      metaLine.appendChild(document.createTextNode(" · "));
      metaLine.appendChild(el("span", "source", item.source));
      li.appendChild(metaLine);
      var href = typeof item.url === "string" ? httpUrl(item.url) : null;
      var title;
      if (href) {
        title = el("a", "title", item.title);
        title.href = href;
        title.target = "_blank";
        title.rel = "noopener noreferrer";
      } else {
        title = el("span", "title", item.title);
      }
      li.appendChild(title);
      if (item.teaser) li.appendChild(el("p", "teaser", item.teaser));
      list.appendChild(li);
    });
    box.appendChild(list);
    var credit = el("p", "credit", "via ");
    var home = el("a", "", "Newsdesk");
    home.href = origin + "/";
    home.target = "_blank";
    home.rel = "noopener noreferrer";
    credit.appendChild(home);
    box.appendChild(credit);
    root.appendChild(box);
  }

  function mount(script) {
    if (script.getAttribute("data-newsdesk-mounted")) return;
    script.setAttribute("data-newsdesk-mounted", "1");
    var src = httpUrl(script.src, document.baseURI);
    if (!src) return;
    var origin = new URL(src).origin;
    var data = script.dataset;
    var params = new URLSearchParams();
    // data-story names a story outright: its outlets are listed whatever page the box sits on.
    if (data.story) params.set("story", data.story.slice(0, 64));
    var url = data.story ? "" : data.url || meta('link[rel="canonical"]') || meta('meta[property="og:url"]') || location.href;
    var pageUrl = httpUrl(url, document.baseURI);
    if (pageUrl) params.set("url", pageUrl);
    var title = data.story ? "" : data.title || meta('meta[property="og:title"]') || document.title || "";
    if (title) params.set("title", title.slice(0, 500));
    var text = data.story ? "" : data.text || meta('meta[property="og:description"]') || meta('meta[name="description"]');
    if (text) params.set("text", text.slice(0, 2000));
    var date = data.story ? "" : data.date || meta('meta[property="article:published_time"]');
    if (date && !isNaN(new Date(date).getTime())) params.set("date", new Date(date).toISOString());
    if (data.limit) params.set("limit", data.limit);

    var host = el("div");
    host.className = "newsdesk-related";
    var target = data.target ? document.getElementById(data.target) : null;
    if (target) target.appendChild(host);
    else script.parentNode.insertBefore(host, script.nextSibling);
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    if (window.CSSStyleSheet && "adoptedStyleSheets" in root) {
      // A constructed sheet is not inline style, so a host page's strict style-src does not block it.
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(el("style", "", CSS));
    }

    fetch(origin + "/api/v1/related?" + params.toString(), { credentials: "omit", mode: "cors" })
      .then(function (response) {
        return response.ok ? response.json() : { items: [] };
      })
      .then(function (body) {
        var items = body && Array.isArray(body.items) ? body.items : [];
        // Nothing close enough: show nothing rather than an empty box.
        if (items.length) render(root, items, origin);
        else host.hidden = true;
        host.setAttribute("data-state", items.length ? "ready" : "empty");
      })
      .catch(function () {
        host.hidden = true;
        host.setAttribute("data-state", "error");
      });
  }

  var scripts = document.querySelectorAll("script[data-newsdesk-related]");
  for (var i = 0; i < scripts.length; i++) mount(scripts[i]);
})();
