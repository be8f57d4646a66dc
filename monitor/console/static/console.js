// The console's one script: select all, show the reship fields only for 已补发, poll the queue for new tickets.
// Pages work without it; it only saves a click or a reload.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll('input[name="ids"]').forEach((box) => { box.checked = all.checked; });
    });
  }
  document.querySelectorAll("select[data-reship]").forEach((select) => {
    const fields = select.form.querySelector(".reship");
    const show = () => { fields.hidden = select.value !== "reshipped"; };
    select.addEventListener("change", show);
    show();
  });
  const bulk = document.getElementById("bulk");
  if (bulk && bulk.dataset.poll) {
    let newest = Number(bulk.dataset.newest || 0);
    let fresh = 0;
    const poll = async () => {
      try {
        const url = bulk.dataset.poll + (bulk.dataset.poll.includes("?") ? "&" : "?") + "after=" + newest;
        const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!answer.ok) return;
        const data = await answer.json();
        const counts = document.getElementById("counts");
        counts.textContent = "";
        for (const [rule, n] of Object.entries(data.counts)) {
          const a = document.createElement("a");
          a.className = "count"; a.dataset.rule = rule; a.href = "/queue?view=all&rule=" + encodeURIComponent(rule);
          a.append(((data.labels || {})[rule] || rule) + " "); const b = document.createElement("b"); b.textContent = String(n); a.append(b);
          counts.append(a);
        }
        const rows = document.getElementById("rows");
        for (const t of data.new) {
          if (rows.querySelector('tr[data-id="' + t.id + '"]')) continue;
          const tr = document.createElement("tr");
          tr.className = "new"; tr.dataset.id = String(t.id);
          const cells = ["", String(t.id), ((data.labels || {})[t.rule] || t.rule) + " " + t.title, t.carrier + " " + t.tracking_no, "",
            t.stake === null ? "" : "¥" + t.stake.toFixed(2), t.created_at, "", "—", "open"];
          cells.forEach((text, i) => {
            const td = document.createElement("td");
            if (i === 0) {
              const box = document.createElement("input");
              box.type = "checkbox"; box.name = "ids"; box.value = String(t.id); td.append(box);
            } else { td.textContent = text; }
            tr.append(td);
          });
          const empty = rows.querySelector("tr.empty");
          if (empty) empty.remove();
          rows.prepend(tr);
          newest = Math.max(newest, t.id);
          fresh += 1;
        }
        if (fresh) {
          document.getElementById("fresh").hidden = false;
          document.getElementById("fresh-n").textContent = String(fresh);
        }
      } catch (err) { /* the next poll retries */ }
    };
    setInterval(poll, Number(bulk.dataset.interval || 10000));
  }
});
