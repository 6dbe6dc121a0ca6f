/* clickledger first-party tracking (docs/TRACKING.md, "First-party script").
 *
 * On every page of the shop:
 *   <script src="https://TRACKER/t.js" data-offer="summer" async></script>
 * It keeps the click id of the landing URL in a first-party cookie of the shop (`clk_id`), so a
 * conversion is attributed even when the browser sends no third-party cookie to the tracker.
 * On the thank-you page:
 *   clickledger.convert({order_id: "A-1001", amount: "80.00", currency: "USD"})
 * or, before the script has loaded:
 *   (window.clickledgerq = window.clickledgerq || []).push({order_id: "A-1001", amount: "80.00"})
 * Attributes: data-offer (the default offer), data-param (the click id's query parameter,
 * `click_id` unless the offer sets another), data-days (how long the cookie lasts, 30).
 */
(function () {
  var script = document.currentScript;
  if (!script) { return; }
  var tracker = new URL(script.src).origin;
  var attribute = function (name, fallback) { return script.getAttribute(name) || fallback; };
  var param = attribute("data-param", "click_id");
  var days = Number(attribute("data-days", "30")) || 30;
  var landed = new URLSearchParams(window.location.search).get(param);
  if (landed) {
    document.cookie = "clk_id=" + encodeURIComponent(landed) + "; Max-Age=" + days * 86400 +
      "; Path=/; SameSite=Lax" + (window.location.protocol === "https:" ? "; Secure" : "");
  }
  function clickId() {
    var found = document.cookie.match(/(?:^|; )clk_id=([^;]*)/);
    return found ? decodeURIComponent(found[1]) : null;
  }
  function convert(fields) {
    var query = new URLSearchParams();
    Object.keys(fields || {}).forEach(function (name) {
      if (fields[name] !== null && fields[name] !== undefined) { query.set(name, String(fields[name])); }
    });
    if (!query.has("offer") && attribute("data-offer", "")) { query.set("offer", attribute("data-offer", "")); }
    var id = clickId();
    if (id && !query.has("click_id")) { query.set("click_id", id); }
    return new Promise(function (resolve) {
      var pixel = new Image();
      pixel.onload = pixel.onerror = function () { resolve(); };
      pixel.src = tracker + "/px?" + query.toString();
    });
  }
  var queued = window.clickledgerq || [];
  window.clickledger = { convert: convert, clickId: clickId };
  window.clickledgerq = { push: convert };
  queued.forEach(convert);
})();
