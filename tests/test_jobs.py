"""Jobs own Stop: a multi-image ad stopped between images, one session's Stop, and a hit's own parameters."""

import dataclasses

import pytest

from adgen.ad import AdMaker
from adgen.errors import GenerationStopped
from adgen.jobs import Job, Jobs
from adgen.metadata import read_params

from test_ad import spec


def test_stop_between_the_images_of_an_ad_ends_it_before_the_next(engine, product):
    maker, job = AdMaker(engine), Job("tab")

    def stop_after_the_first_image(done, total):
        if done == 2:  # the first image's last step (2 steps each)
            job.stop()

    with pytest.raises(GenerationStopped) as stopped:
        maker.make(spec(product, count=3), progress=stop_after_the_first_image, job=job)
    assert (stopped.value.step, stopped.value.total) == (2, 6)  # counted over the whole ad, like the progress
    assert engine.runs == 1 and not engine.jobs.running()


def test_a_stop_pressed_during_an_ad_is_found_by_its_session(engine, product):
    maker, job = AdMaker(engine), Job("tab-x")

    def press(done, total):
        if done == 3:
            assert engine.stop("tab-y") == 0 and engine.stop("tab-x") == 1  # between the two images' runs too

    with pytest.raises(GenerationStopped):
        maker.make(spec(product, count=2), progress=press, job=job)
    assert engine.runs == 2


def test_an_ad_served_from_the_cache_names_its_own_product(engine, product):
    maker = AdMaker(engine)
    first = maker.make(spec(product, prompt="a bottle on a table")).images[0]
    other = dataclasses.replace(product, name="Aurora earbuds")
    second = maker.make(spec(other, prompt="a bottle on a table")).images[0]
    assert second.step_cached["background"] and engine.runs == 1
    assert read_params(second.png)["product"]["name"] == "Aurora earbuds"
    assert read_params(first.png)["product"]["name"] == product.name


def test_jobs_stop_only_their_session_and_nested_opens_keep_one_registration():
    jobs = Jobs()
    with jobs.open("a") as a, jobs.open("b") as b:
        with jobs.open(job=a):  # the engine re-opens the ad's job for each image
            pass
        assert jobs.running("a") == [a]
        assert jobs.stop("a") == 1 and a.stopped and not b.stopped
        assert jobs.stop_all() == 2 and b.stopped
    assert jobs.running() == []
    gone = Job("c", gone=lambda: True)
    assert gone.stopped and gone.reason == "stopped because the client disconnected"
    broken = Job("d", gone=lambda: 1 / 0)
    assert not broken.stopped  # a failing probe never ends a job
