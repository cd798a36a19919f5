// The error banner (role="alert", so screen readers announce it) and the marking of the control the
// server named in its `field`. No failure is silent: every rejected request ends up here.

export function showError(banner, textEl, message, field, form) {
  textEl.textContent = message;
  banner.hidden = false;
  clearFieldMarks(form);
  if (!field) return;
  const control = form.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (!control) return;
  control.setAttribute("aria-invalid", "true");
  control.setAttribute("aria-errormessage", banner.id);
  control.closest(".field")?.classList.add("invalid");
}

export function clearError(banner, textEl, form) {
  banner.hidden = true;
  textEl.textContent = "";
  clearFieldMarks(form);
}

export function clearFieldMarks(form) {
  for (const control of form.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
    control.removeAttribute("aria-errormessage");
    control.closest(".field")?.classList.remove("invalid");
  }
}
