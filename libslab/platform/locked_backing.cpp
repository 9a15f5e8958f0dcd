#include <slab/platform/locked_backing.hpp>
