"use strict";
// The product change form's scripts (a static file: the Content-Security-Policy allows no
// inline script).
// The Re-index button posts its own form and reloads the page: edits not saved yet would be
// lost without a word, so it asks first when the product form has any.
(() => {
  const button = document.getElementById("reindex-button"), form = document.getElementById("product_form");
  if (!button || !form) return;
  const changed = (el) => {
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    if (el.tagName === "SELECT") return [...el.options].some((o) => o.selected !== o.defaultSelected);
    if (el.type === "file") return el.files.length > 0;
    return "defaultValue" in el && el.value !== el.defaultValue;
  };
  button.form.addEventListener("submit", (ev) => {
    const unsaved = [...form.elements].some(changed);
    if (unsaved && !confirm("This product has unsaved changes, which re-indexing would lose (it reloads the page). Re-index anyway?")) ev.preventDefault();
  });
})();

// Choosing a product photo asks CLIP (POST /api/describe/) for a category and colour and
// offers them. Nothing changes without a click, and before the click the suggestion says
// what Apply will set or replace (or why there is nothing to apply); after it, what it did.
(() => {
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const category = document.getElementById("id_category"), colour = document.getElementById("id_colour");
  const quoted = (text) => `“${text}”`;
  const chosenText = (select) => (select.value && select.selectedIndex >= 0 ? select.options[select.selectedIndex].text : "");

  // What Apply would do now, field by field: a change {field, el, value, from, to} or a note.
  function plan(cat, col) {
    const changes = [], notes = [];
    if (cat && category) {
      const option = [...category.options].find((o) => o.value && o.text === cat.name);
      if (!option) notes.push(`category ${cat.name} is not one of the catalog's categories`);
      else if (category.value === option.value) notes.push(`category is already ${cat.name}`);
      else changes.push({ field: "category", el: category, value: option.value, from: chosenText(category), to: cat.name });
    }
    if (col && colour) {
      const current = colour.value.trim();
      if (current.toLowerCase() === col.name.toLowerCase()) notes.push(`colour is already ${col.name}`);
      else changes.push({ field: "colour", el: colour, value: col.name, from: current, to: col.name });
    }
    return { changes, notes };
  }

  const describeChange = (c) => (c.from ? `replaces ${c.field} ${quoted(c.from)} with ${quoted(c.to)}` : `sets ${c.field} to ${quoted(c.to)}`);

  // Suggestions not applied yet: their text follows edits of the two fields.
  const offered = new Map();
  for (const el of [category, colour]) {
    if (el) for (const type of ["input", "change"]) el.addEventListener(type, () => offered.forEach(([cat, col], box) => render(box, cat, col)));
  }

  function render(box, cat, col) {
    offered.set(box, [cat, col]);
    const score = (x) => (x ? `${x.name} (${x.score.toFixed(2)})` : "?");
    const { changes, notes } = plan(cat, col);
    box.replaceChildren(`CLIP suggests: category ${score(cat)}, colour ${score(col)}. `);
    const what = document.createElement("span");
    what.className = "clip-plan";
    what.id = `${box.id}-plan`;
    const parts = [];
    if (changes.length) parts.push(`Apply ${changes.map(describeChange).join(" and ")}.`);
    if (notes.length) parts.push(`${changes.length ? "Unchanged" : "Nothing to apply"}: ${notes.join("; ")}.`);
    what.textContent = parts.join(" ");
    box.append(what);
    if (!changes.length) return;
    const apply = document.createElement("button");
    apply.type = "button"; apply.textContent = "Apply"; apply.className = "button clip-apply";
    apply.setAttribute("aria-describedby", what.id);
    apply.onclick = () => {
      const now = plan(cat, col).changes;  // the fields may have been edited since
      offered.delete(box);
      for (const c of now) { c.el.value = c.value; c.el.dispatchEvent(new Event("change", { bubbles: true })); }
      box.replaceChildren(
        now.length
          ? `Applied: ${now.map((c) => `${c.field} ${c.to}${c.from ? ` (was ${c.from})` : ""}`).join(", ")}. Save to keep it.`
          : "Nothing to apply: the fields already hold CLIP's suggestion.",
      );
    };
    box.append(" ", apply);
  }

  let boxes = 0;
  document.addEventListener("change", async (ev) => {
    const input = ev.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.name.endsWith("-image") || !input.files.length) return;
    let box = input.parentElement.querySelector(".clip-suggestion");
    if (!box) {
      box = document.createElement("div");
      box.className = "clip-suggestion help"; box.id = `clip-suggestion-${++boxes}`;
      box.setAttribute("role", "status");  // read out when the suggestion arrives
      input.after(box);
    }
    box.textContent = "Asking CLIP…";
    const body = new FormData(); body.append("image", input.files[0]); body.append("top", "3");
    try {
      const r = await fetch(document.getElementById("product-form-config").dataset.describeUrl, { method: "POST", body, headers: { "X-CSRFToken": csrf } });
      const d = await r.json();
      if (!r.ok) { box.textContent = d.error || "No suggestion."; return; }
      render(box, d.categories[0], d.colours[0]);
    } catch (e) { box.textContent = "No suggestion (search unavailable)."; }
  });
})();
