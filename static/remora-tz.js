// Tell the server the viewer's time zone (the `tz` cookie), so pages that show times in it
// (the audit log) can. When the page was drawn in another zone, draw it again once.
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone) return;
  var read = function () {
    var found = document.cookie.match(/(?:^|; )tz=([^;]*)/);
    return found ? decodeURIComponent(found[1]) : "";
  };
  if (read() === zone) return;
  var secure = location.protocol === "https:" ? "; secure" : "";
  document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax" + secure;
  var drawn = document.documentElement.getAttribute("data-tz");
  // Only when the cookie took (cookies may be off: never reload in a loop).
  if (drawn && drawn !== zone && read() === zone) location.reload();
})();
