// The unsaved-changes guard of the console's forms: a form edited and not saved holds
// the page (the browser's leave dialog on reload or close, a confirm on hash navigation).
export function createUnsaved() {
  const dirty = new Set();
  const pending = () => [...dirty].filter((form) => form.isConnected);
  window.addEventListener('beforeunload', (event) => {
    if (pending().length === 0) return;
    event.preventDefault();
    event.returnValue = '';
  });
  return {
    /** Marks `form` as changed on its first edit. */
    watch(form) {
      const mark = () => dirty.add(form);
      form.addEventListener('input', mark);
      form.addEventListener('change', mark);
      return form;
    },
    /** Marks `element` as changed: for an editor that is not a form field (the definition editor). */
    changed(element) {
      dirty.add(element);
    },
    /** The form's changes are saved (or given up). */
    saved(form) {
      dirty.delete(form);
    },
    /** Whether the page may be left: nothing unsaved, or the user agrees to lose it. */
    mayLeave() {
      if (pending().length === 0) return true;
      if (!confirm('This page has unsaved changes. Leave it and lose them?')) return false;
      dirty.clear();
      return true;
    },
    forget() {
      dirty.clear();
    },
  };
}
