// The login page's live part, and all the script it needs: the page itself is rendered by
// the server and works without JavaScript (it reloads itself every few seconds). With it,
// the code's time counts down, and the phone's answer arrives at once over the page's event
// stream: approved signs this browser in, refused says why, expired brings a new code. The
// page loads no WebAssembly, so a technician's first visit stays small and starts at once.
(function () {
  "use strict";
  const qr = document.getElementById("login-qr");
  if (!qr) return;
  const challenge = qr.dataset.challenge;
  const countdown = document.getElementById("countdown");
  const reload = () => window.location.reload();

  // The countdown as the server wrote it, `m:ss`: the time left when the page was answered.
  const [minutes, seconds] = (countdown ? countdown.textContent : "").split(":").map(Number);
  let remaining = Number.isFinite(minutes) && Number.isFinite(seconds) ? minutes * 60 + seconds : NaN;
  if (countdown && Number.isFinite(remaining)) {
    setInterval(() => {
      remaining -= 1;
      const left = Math.max(remaining, 0);
      countdown.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
      // A fresh code replaces an expired one: reloading asks the server for it.
      if (remaining <= 0) reload();
    }, 1000);
  }

  function notice(text) {
    let p = document.getElementById("login-notice");
    if (!p) {
      p = document.createElement("p");
      p.id = "login-notice";
      p.className = "flash error";
      p.setAttribute("role", "alert");
      const card = qr.closest(".login-card") || qr.parentElement;
      const hint = card.querySelector(".hint");
      card.insertBefore(p, hint);
    }
    p.textContent = text;
  }

  const events = new EventSource(`/login/events?challenge=${encodeURIComponent(challenge)}`);
  // Loading the page again completes the sign-in with this browser's binding cookie.
  events.addEventListener("approved", () => window.location.replace("/"));
  for (const refused of ["denied", "cancelled"]) {
    events.addEventListener(refused, (ev) => {
      let reason = "the request was refused";
      try {
        reason = JSON.parse(ev.data).reason || reason;
      } catch (_) {
        // A reason that is not JSON keeps the general sentence.
      }
      events.close();
      notice(`Sign-in refused: ${reason}. A new code follows in a moment.`);
      setTimeout(reload, 4000);
    });
  }
  events.addEventListener("expired", reload);
})();
