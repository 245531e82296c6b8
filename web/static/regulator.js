// The regulator's desk: lots suggested as a code is typed (no inline script: the CSP allows
// 'self' only). Without JavaScript the form's look-up page lists the same suggestions.
"use strict";

for (const input of document.querySelectorAll("input[data-suggest]")) {
  const list = document.getElementById("lot-suggestions");
  let timer = 0;
  let latest = 0;
  const letters = (s) => s.replace(/[\W_]+/gu, "");

  const show = (items) => {
    list.replaceChildren(
      ...items.map((s) => {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = `/regulator/trail?credit_code=${encodeURIComponent(s.credit_code)}&lot=${encodeURIComponent(s.lot_code)}`;
        a.dataset.lot = s.lot_code;
        const code = document.createElement("strong");
        code.textContent = s.lot_code;
        const about = document.createElement("span");
        about.textContent = ` ${s.enterprise} · ${s.product} · ${s.production_date}`;
        a.append(code, about);
        if (s.exact) {
          const badge = document.createElement("span");
          badge.className = "badge ok";
          badge.textContent = list.dataset.exact;
          a.append(" ", badge);
        }
        li.append(a);
        return li;
      }),
    );
    list.hidden = items.length === 0;
  };

  const ask = async () => {
    const typed = input.value.trim();
    const mine = ++latest;
    if (letters(typed).length < 2) return show([]);
    try {
      const r = await fetch(`${input.dataset.suggest}?q=${encodeURIComponent(typed)}`, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (r.ok && mine === latest) show(await r.json());
    } catch {
      // the look-up page still answers the form
    }
  };

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(ask, 200);
  });
  // ArrowDown from the field to the suggestions, arrows between them, Escape back
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" && !list.hidden) {
      ev.preventDefault();
      list.querySelector("a")?.focus();
    } else if (ev.key === "Escape") {
      show([]);
    }
  });
  list.addEventListener("keydown", (ev) => {
    const links = [...list.querySelectorAll("a")];
    const at = links.indexOf(document.activeElement);
    if (ev.key === "ArrowDown" && at < links.length - 1) {
      ev.preventDefault();
      links[at + 1].focus();
    } else if (ev.key === "ArrowUp") {
      ev.preventDefault();
      (at > 0 ? links[at - 1] : input).focus();
    } else if (ev.key === "Escape") {
      input.focus();
      show([]);
    }
  });
}

// The trail graph, when wider than its box, opens with the traced lot in view.
for (const box of document.querySelectorAll(".graph-box")) {
  const start = box.querySelector("[data-start]");
  if (start && box.scrollWidth > box.clientWidth) {
    const b = box.getBoundingClientRect();
    const s = start.getBoundingClientRect();
    box.scrollLeft += s.left - b.left - (box.clientWidth - s.width) / 2;
  }
}
