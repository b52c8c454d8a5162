/* Stands in for another CPython's libpython already loaded by a host (test_foreign_python). */
const char* Py_GetVersion(void);
const char* Py_GetVersion(void) { return "3.99.0 (fake, for test_foreign_python)"; }
