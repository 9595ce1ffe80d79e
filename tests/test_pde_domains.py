"""Domains: points inside, outward unit normals, quasi-random and grid rules, set operations."""

import dask.array as da
import numpy as np
import pytest

from pipeline.pde.domains import Ball, Box, unit_cube_points
from pipeline.pde.polygons import LShape, Polygon, UserDomain


@pytest.mark.parametrize("method", ["uniform", "sobol", "halton", "grid"])
@pytest.mark.parametrize(
    "domain", [Box.cube(3), Box([-1.0, 0.0], [2.0, 0.5]), Ball.unit(4), LShape(), Box.cube(2) - Ball(np.array([0.5, 0.5]), 0.25)],
    ids=["cube3", "box2", "ball4", "lshape", "holed-square"],
)
def test_interior_points_lie_inside(domain, method):
    pts = domain.sample_interior(500, method=method, seed=3)
    assert pts.shape[1] == domain.dim and len(pts) > 0
    assert domain.contains(pts).all()
    if method != "grid":
        assert len(pts) == 500


@pytest.mark.parametrize(
    "domain", [Box.cube(3), Ball.unit(5), LShape(), Box.cube(2) - Ball(np.array([0.5, 0.5]), 0.25),
               Ball(np.zeros(2), 1.0) | Box([0.5, -0.2], [2.0, 0.2]), Box.cube(2, -1, 1) & Ball(np.zeros(2), 1.2)],
    ids=["cube3", "ball5", "lshape", "difference", "union", "intersection"],
)
def test_boundary_points_and_outward_unit_normals(domain):
    b = domain.sample_boundary(400, seed=1)
    assert len(b) == 400
    np.testing.assert_allclose(np.linalg.norm(b.normals, axis=1), 1.0)
    assert domain.contains(b.points).all()
    # a small step along the normal leaves the domain, a step against it enters
    eps = 1e-6
    assert not domain.contains(b.points + eps * b.normals, strict=True).any()
    assert domain.contains(b.points - eps * b.normals).all()


def test_box_faces_are_labelled_and_shared_by_area():
    box = Box([0.0, 0.0], [2.0, 1.0])
    b = box.sample_boundary(600, seed=0)
    counts = np.bincount(b.parts, minlength=4)
    np.testing.assert_array_equal(counts, [100, 100, 200, 200])  # faces x0-/x0+ have length 1, x1-/x1+ length 2
    assert box.part_names == ("x0-", "x0+", "x1-", "x1+")
    assert np.all(b.points[b.parts == 1, 0] == 2.0) and np.all(b.normals[b.parts == 1] == [1, 0])


def test_quasi_random_points_cover_more_evenly_than_uniform():
    from scipy.stats import qmc

    uniform = unit_cube_points(1024, 2, "uniform", seed=0)
    sobol = unit_cube_points(1024, 2, "sobol", seed=0)
    assert qmc.discrepancy(sobol) < 0.2 * qmc.discrepancy(uniform)


def test_large_point_sets_are_lazy_and_reproducible():
    domain = LShape()
    a = domain.interior_points(25_000, seed=5, chunk_rows=10_000)
    b = domain.interior_points(25_000, seed=5, chunk_rows=10_000)
    assert isinstance(a, da.Array) and a.chunks[0] == (10_000, 10_000, 5_000)
    np.testing.assert_array_equal(a.compute(), b.compute())
    assert domain.contains(a.compute()).all()


def test_polygon_orientation_and_normals():
    square_cw = Polygon(np.array([[0, 0], [0, 1], [1, 1], [1, 0]], dtype=float))
    b = square_cw.sample_boundary(40, seed=0)
    centre = np.array([0.5, 0.5])
    assert np.all(np.einsum("ij,ij->i", b.normals, b.points - centre) > 0)


def test_user_domain():
    def interior(n, rng):
        return rng.uniform(-1, 1, size=(n, 2)) * 0.5

    def boundary(n, rng):
        t = rng.uniform(0, 2 * np.pi, n)
        pts = np.c_[np.cos(t), np.sin(t)]
        return pts, pts

    user = UserDomain(2, interior, boundary)
    assert user.sample_interior(10, seed=0).shape == (10, 2)
    assert user.sample_boundary(7, seed=0).normals.shape == (7, 2)
    with pytest.raises(ValueError, match="contains_fn"):
        user.contains(np.zeros((1, 2)))


def test_bad_domain_input():
    with pytest.raises(ValueError, match="lo < hi"):
        Box([0.0, 1.0], [1.0, 0.5])
    with pytest.raises(ValueError, match="radius"):
        Ball(np.zeros(2), -1.0)
    with pytest.raises(ValueError, match="point method"):
        Box.cube(2).sample_interior(10, method="lattice")
    with pytest.raises(ValueError, match="one dimension"):
        Box.cube(2) | Ball.unit(3)
    with pytest.raises(ValueError, match="non-negative integer"):
        Box.cube(2).sample_boundary(-3)


def test_set_operations_keep_the_part_names_of_their_operands():
    holed = Box.cube(2) - Ball(np.array([0.5, 0.5]), 0.2)
    assert holed.part_names == ("x0-", "x0+", "x1-", "x1+", "hole")
    b = holed.sample_boundary(2000, seed=0)
    names = np.array(holed.part_names)[b.parts]
    np.testing.assert_allclose(np.linalg.norm(b.points[names == "hole"] - 0.5, axis=1), 0.2)
    assert np.all(b.points[names == "x0-", 0] == 0.0) and np.all(b.points[names == "x1+", 1] == 1.0)
    # the hole's normals point out of the domain: into the hole
    hole = names == "hole"
    assert np.all(np.einsum("ij,ij->i", b.normals[hole], b.points[hole] - 0.5) < 0)
    # a hole with several parts: hole.<name>, all selected by the group name "hole"
    boxed = Box.cube(2) - Box([0.4, 0.4], [0.6, 0.6])
    assert boxed.part_names[4:] == ("hole.x0-", "hole.x0+", "hole.x1-", "hole.x1+")
    assert boxed.part_indices("hole") == [4, 5, 6, 7] and boxed.part_indices(["x0-", "hole.x1+"]) == [0, 7]
    b = boxed.sample_boundary(2000, seed=0)
    on_left_of_hole = b.parts == boxed.part_names.index("hole.x0-")
    assert on_left_of_hole.any() and np.all(b.points[on_left_of_hole, 0] == 0.4)
    # names both operands have are qualified a.<name> / b.<name>; the others are kept
    assert (Box.cube(2) | Box([0.5, 0.5], [1.5, 1.5])).part_names == (
        "a.x0-", "a.x0+", "a.x1-", "a.x1+", "b.x0-", "b.x0+", "b.x1-", "b.x1+")
    assert (Box.cube(2, -1, 1) & Ball(np.zeros(2), 1.2)).part_names == ("x0-", "x0+", "x1-", "x1+", "boundary")
    twice = (Box.cube(2) - Ball(np.array([0.3, 0.3]), 0.1)) - Ball(np.array([0.7, 0.7]), 0.1)
    assert twice.part_names == ("x0-", "x0+", "x1-", "x1+", "a.hole", "b.hole")
    assert len(set(twice.sample_boundary(500, seed=0).parts)) == 6


def test_an_unknown_part_name_lists_the_parts():
    holed = Box.cube(2) - Ball(np.array([0.5, 0.5]), 0.2)
    with pytest.raises(ValueError, match=r"unknown boundary part 'x5-'; this domain's parts: x0-, x0\+, x1-, x1\+, hole"):
        holed.part_indices("x5-")
