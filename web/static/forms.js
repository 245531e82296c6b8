// Record forms: the repeating parts' "add a row" and "remove" in place, and the error
// summary in focus. Without JavaScript the same buttons post the form, which comes back
// with the row added or removed and every value kept (enterprise_portal/forms.py).
"use strict";

function rowsOf(part) {
  return [...part.querySelectorAll(":scope > .row-grid")];
}

// Give a part's rows the numbers of their places: field names, ids, labels, buttons.
function renumber(part) {
  const name = part.dataset.rows;
  rowsOf(part).forEach((row, i) => {
    const was = row.dataset.row;
    if (was !== String(i)) {
      const from = `${name}.${was}.`;
      const to = `${name}.${i}.`;
      for (const el of row.querySelectorAll("[name], [id], [for], [aria-describedby]")) {
        for (const attr of ["name", "id", "for", "aria-describedby"]) {
          const v = el.getAttribute(attr);
          if (v && v.startsWith(from)) el.setAttribute(attr, to + v.slice(from.length));
        }
      }
      row.dataset.row = String(i);
    }
    const n = String(i + 1);
    row.querySelector(".row-no").textContent = part.dataset.rowLabel.replace("__n__", n);
    const remove = row.querySelector("button[name=remove_row]");
    if (remove) {
      remove.value = `${name}.${i}`;
      remove.setAttribute("aria-label", part.dataset.removeLabel.replace("__n__", n));
    }
  });
  part.querySelector(`input[name="${name}.rows"]`).value = String(rowsOf(part).length);
}

function firstField(row) {
  return row && row.querySelector("input:not([type=hidden]), select, textarea");
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[name=add_row], button[name=remove_row]");
  const part = button && button.closest("fieldset[data-rows]");
  if (!part) return;
  event.preventDefault();
  if (button.name === "add_row") {
    const rows = rowsOf(part);
    const i = String(rows.length);
    const html = part.querySelector("template.row-template").innerHTML
      .replaceAll("__i__", i).replaceAll("__n__", String(rows.length + 1));
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const row = holder.firstElementChild;
    part.querySelector("template.row-template").before(row);
    renumber(part);
    firstField(row).focus();
  } else {
    const row = button.closest(".row-grid");
    const next = row.nextElementSibling && row.nextElementSibling.matches(".row-grid")
      ? row.nextElementSibling : null;
    row.remove();
    renumber(part);
    (firstField(next) || part.querySelector("button[name=add_row]")).focus();
  }
});

const summary = document.getElementById("error-summary");
if (summary) summary.focus();
