/* A named, never-inlined C function around a measured piece of work, so that
 * callgrind can count instructions inside it alone:
 *   valgrind --tool=callgrind --collect-atstart=no \
 *            --toggle-collect=ixy_measured_region --dump-after=ixy_measured_region ...
 */
#ifndef IXY_MEASURE_H
#define IXY_MEASURE_H

#include <Python.h>

__attribute__((noinline, visibility("default")))
PyObject *ixy_measured_region(PyObject *fn)
{
    return PyObject_CallNoArgs(fn);
}

#endif
