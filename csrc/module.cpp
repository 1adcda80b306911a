// The Python module gankernels._C: empty, loading it runs the TORCH_LIBRARY registrations.
// Only the limited C API is used, so one abi3 build serves every CPython >= 3.10.
#include <Python.h>

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C",
                                          "gankernels' compiled kernels (torch.ops.gankernels)", -1,
                                          nullptr};
  return PyModule_Create(&module_def);
}
}
