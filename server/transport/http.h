// The one way server code includes cpp-httplib.
//
// <httplib.h> includes <resolv.h>, which defines the macro `_res` (the resolver state). Eigen uses `_res` as a
// parameter name in its matrix-product kernels, so any Eigen header parsed AFTER httplib fails to compile. No header
// a server file includes reaches Eigen today (infer/ood.h keeps it out; only infer/ood.cpp includes it), so this is a
// guard: with Eigen parsed first, a header that starts to include Eigen cannot break the server's build.
#pragma once

#include <Eigen/Core>
#include <httplib.h>
