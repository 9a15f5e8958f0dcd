#include <slab/platform/platform.hpp>
