// See distributed.cpp: ProcessGroupGloo.hpp includes this name; nothing from it is used.
#pragma once
